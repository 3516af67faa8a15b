-- The wallet API in app_public. Wallets and their history are views over the
-- ledger that show the signed-in user's own rows only: the filter is part of
-- each view (security_barrier keeps a caller's predicates from running
-- before it), and the ledger tables themselves stay out of reach.

create or replace view app_public.wallets with (security_barrier) as
  select a.id,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nYour wallets: one per currency. Amounts are in minor units (cents).';
comment on column app_public.wallets.id is E'@notNull';
comment on column app_public.wallets.currency is E'@notNull\nISO 4217 code, e.g. ZAR.';
comment on column app_public.wallets.balance is E'@notNull\n@behavior -filterBy -orderBy\nEverything in the wallet, in minor units, including held money.';
comment on column app_public.wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy\nWhat can be spent now: balance minus held.';
comment on column app_public.wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy\nReserved by pending withdrawals and other holds.';
comment on column app_public.wallets.frozen is E'@notNull\n@behavior -filterBy -orderBy\nA frozen wallet can receive money but not send it.';
comment on column app_public.wallets.created_at is E'@notNull\n@behavior -filterBy';

-- One row per posting to one of your wallets, with the other side of the
-- entry named for display. Wallet.transactions pages through it newest first.
create or replace view app_public.wallet_transactions with (security_barrier) as
  select p.account_id as wallet_id,
         p.sequence,
         p.entry_id,
         p.amount,
         p.currency,
         e.kind,
         e.memo,
         cp.name as counterparty_name,
         p.balance_after,
         p.created_at as occurred_at
    from ledger.postings p
    join ledger.accounts a on a.id = p.account_id
    join ledger.entries e on e.id = p.entry_id
    left join lateral (
      -- The largest leg on the other side of the entry: a person, or what a
      -- system account stands for.
      select coalesce(u.full_name, case oa.kind::text when 'revio_clearing' then 'Revio'
                                                      when 'withdrawals_in_flight' then 'Bank withdrawal'
                                                      when 'fees' then 'pgwallet fees'
                                                      when 'adjustments' then 'pgwallet adjustment' end) as name
        from ledger.postings o
        join ledger.accounts oa on oa.id = o.account_id
        left join app_public.users u on u.id = oa.owner_id
       where o.entry_id = p.entry_id and o.account_id <> p.account_id and sign(o.amount) <> sign(p.amount)
       order by abs(o.amount) desc, o.id
       limit 1
    ) cp on true
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallet_transactions is
  E'@primaryKey wallet_id,sequence\n'
  '@foreignKey (wallet_id) references app_public.wallets (id)|@fieldName wallet|@foreignFieldName transactions\n'
  '@behavior -insert -update -delete -query:resource:list -query:resource:connection -query:resource:single\n'
  'A movement of money in one of your wallets.';
comment on column app_public.wallet_transactions.wallet_id is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.sequence is E'@notNull\n@behavior -filterBy -orderBy\nPosition in the wallet''s history: 1 for the first movement.';
comment on column app_public.wallet_transactions.entry_id is E'@notNull\n@behavior -filterBy -orderBy\nThe journal entry this movement belongs to (a transfer''s id).';
comment on column app_public.wallet_transactions.amount is E'@notNull\n@behavior -filterBy -orderBy\nSigned minor units: positive arrived, negative left.';
comment on column app_public.wallet_transactions.currency is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.kind is E'@notNull\n@behavior -orderBy\nWhat kind of movement this is.';
comment on column app_public.wallet_transactions.memo is E'@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.counterparty_name is E'@behavior -filterBy -orderBy\nWho is on the other side: a person''s name, or Revio, Bank withdrawal, pgwallet fees, pgwallet adjustment.';
comment on column app_public.wallet_transactions.balance_after is E'@notNull\n@behavior -filterBy -orderBy\nThe wallet balance right after this movement.';
comment on column app_public.wallet_transactions.occurred_at is E'@notNull\n@behavior -filterBy -orderBy\nWhen the movement was recorded.';

-- The GraphQL mutation `openWallet`: returns your wallet in that currency,
-- opening it if you have none yet (so calling it twice is harmless).
create or replace function app_public.open_wallet(currency text)
returns app_public.wallets
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_id uuid;
  v_wallet app_public.wallets;
begin
  if v_caller is null then
    raise exception 'Sign in to open a wallet' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  v_id := ledger.open_wallet(v_caller, upper(btrim(open_wallet.currency)));
  select w.* into v_wallet from app_public.wallets w where w.id = v_id;
  return v_wallet;
end;
$$;
comment on function app_public.open_wallet(text) is
  'Opens a wallet in an ISO 4217 currency (e.g. USD), or returns the one you already have. Unsupported codes fail with CURRENCY_INVALID.';

-- Filtering on kind casts to ledger.entry_kind, which needs USAGE on the
-- schema. USAGE alone grants nothing on the ledger's tables or functions.
grant usage on schema ledger to app_user;
revoke all on app_public.wallets, app_public.wallet_transactions from public, app_anonymous, app_user;
grant select on app_public.wallets, app_public.wallet_transactions to app_user;
revoke all on function app_public.open_wallet(text) from public;
grant execute on function app_public.open_wallet(text) to app_user;

-- User-to-user transfers: same currency, one idempotent entry.
-- app_private.transfer does the work for a caller already identified;
-- app_public.transfer is the GraphQL mutation and identifies the caller.

-- What transfer returns for an entry, as the sender sees it. Built from the
-- immutable entry, so a repeated request gets exactly the first answer.
create or replace function app_private.transfer_entry(p_entry_id uuid)
returns app_public.transfer_entry
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  select e.id, e.kind, d.amount, d.currency, e.memo, s.account_id, d.account_id, u.full_name, e.created_at
    from ledger.entries e
    join ledger.postings s on s.entry_id = e.id and s.amount < 0
    join ledger.postings d on d.entry_id = e.id and d.amount > 0
    join ledger.accounts da on da.id = d.account_id
    left join app_public.users u on u.id = da.owner_id
   where e.id = p_entry_id;
$$;

create or replace function app_private.transfer(
  p_caller uuid,
  p_from_wallet_id uuid,
  p_to_email text,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_memo text := nullif(btrim(p_memo), '');
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_recipient record;
begin
  perform ledger.assert_amount(p_amount);
  if length(v_memo) > 140 then
    raise exception 'The memo may be at most 140 characters' using errcode = 'PW111'; -- MEMO_INVALID
  end if;

  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'transfer',
    jsonb_build_object('from', p_from_wallet_id, 'to', lower(btrim(p_to_email)), 'amount', p_amount, 'memo', v_memo),
    v_entry_id);
  if v_first_entry_id is not null then
    return app_private.transfer_entry(v_first_entry_id);
  end if;

  -- The sender's wallet and the recipient with their wallet in its currency,
  -- in one statement. Someone else's wallet is reported exactly like a
  -- missing one.
  select f.id as from_id, f.currency, u.id as user_id, u.full_name, u.email_verified_at is not null as verified,
         a.id as wallet_id into v_recipient
    from ledger.accounts f
    left join app_public.users u on u.email = btrim(p_to_email)::citext
    left join ledger.accounts a on a.kind = 'user_wallet' and a.owner_id = u.id and a.currency = f.currency
   where f.id = p_from_wallet_id and f.kind = 'user_wallet' and f.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_from_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  if v_recipient.user_id is null then
    raise exception 'No user has the email address %', p_to_email using errcode = 'PW107'; -- RECIPIENT_NOT_FOUND
  end if;
  if v_recipient.user_id = p_caller then
    raise exception 'You cannot transfer money to yourself' using errcode = 'PW108'; -- TRANSFER_TO_SELF
  end if;
  -- Money goes only to addresses proven to belong to someone (issue 9 §4).
  if not v_recipient.verified then
    raise exception '% has not verified their email address yet', p_to_email using errcode = 'PW007'; -- RECIPIENT_UNVERIFIED
  end if;
  if v_recipient.wallet_id is null then
    raise exception 'The recipient has no % wallet', v_recipient.currency using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  -- Accounts are locked only in here, after every check above, to keep the
  -- time wallets stay locked short (post_entry directly: move would only
  -- check the amount again).
  perform ledger.post_entry('transfer',
                            array[row(v_recipient.from_id, -p_amount), row(v_recipient.wallet_id, p_amount)]::ledger.leg[],
                            v_memo, jsonb_build_object('from_user', p_caller, 'to_user', v_recipient.user_id),
                            v_caller || '/' || p_idempotency_key, null, v_entry_id);
  -- The entry as transfer_entry(v_entry_id) would read it back.
  return row(v_entry_id, 'transfer', p_amount, v_recipient.currency, v_memo, v_recipient.from_id, v_recipient.wallet_id,
             v_recipient.full_name, now())::app_public.transfer_entry;
end;
$$;

comment on type app_public.transfer_entry is 'A transfer as its sender sees it.';
comment on column app_public.transfer_entry.id is E'@notNull\nThe journal entry''s id.';
comment on column app_public.transfer_entry.kind is '@notNull';
comment on column app_public.transfer_entry.amount is E'@notNull\nMinor units moved.';
comment on column app_public.transfer_entry.currency is '@notNull';
comment on column app_public.transfer_entry.from_wallet_id is '@notNull';
comment on column app_public.transfer_entry.to_wallet_id is '@notNull';
comment on column app_public.transfer_entry.created_at is E'@notNull\nWhen the transfer was recorded.';

-- The GraphQL mutation `transfer`.
create or replace function app_public.transfer(
  from_wallet_id uuid,
  to_email text,
  amount bigint,
  idempotency_key text,
  memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to transfer money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.transfer(v_caller, from_wallet_id, to_email, amount, idempotency_key, memo);
end;
$$;
comment on function app_public.transfer(uuid, text, bigint, text, text) is
  E'Moves `amount` minor units from one of your wallets to the wallet of the same currency of the user with email `toEmail`. '
  'Repeating a request with the same `idempotencyKey` returns the first result and moves nothing; reusing a key for a different request fails with IDEMPOTENCY_KEY_REUSED.';

-- A payment from a wallet to the fees account: the "hot system account" case.
-- Every such payment credits one logical account, sharded (system_account).
create or replace function app_private.pay_fee(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
begin
  perform ledger.assert_amount(p_amount);
  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'pay_fee',
    jsonb_build_object('wallet', p_wallet_id, 'amount', p_amount, 'memo', p_memo), v_entry_id);
  if v_first_entry_id is not null then
    return v_first_entry_id;
  end if;
  select a.* into v_from from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  return ledger.post_entry('fee', array[row(v_from.id, -p_amount), row(ledger.system_account('fees', v_from.currency), p_amount)]::ledger.leg[],
                           p_memo, '{}', v_caller || '/' || p_idempotency_key, null, v_entry_id);
end;
$$;

revoke all on function app_private.transfer_entry(uuid) from public;
revoke all on function app_private.transfer(uuid, uuid, text, bigint, text, text) from public;
revoke all on function app_private.pay_fee(uuid, uuid, bigint, text, text) from public;
revoke all on function app_public.transfer(uuid, text, bigint, text, text) from public;
grant execute on function app_public.transfer(uuid, text, bigint, text, text) to app_user;

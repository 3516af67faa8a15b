-- The one way money moves: an entry with two or more legs, written at once.
--
-- The cost of a posting is the product's cost, so this function does the
-- bookkeeping itself, once per entry, in three statements: lock and check,
-- write (accounts, entry, postings), and withdraw the proof. Writers that do
-- not go through here (the owner typing SQL) get the same bookkeeping and
-- checks, one row at a time, from the posting trigger (posting_triggers.sql).
--
-- The proof: while it writes, this function sets the transaction-local
-- setting ledger.posting_entry to the entry's id. The guards trust the rows
-- of that entry: the entry and posting triggers skip them, the entry is
-- marked balanced_at_write (so the deferred balance check skips it, and no
-- posting can be added to it later), and the accounts guard lets their
-- balances move. Setting it by hand is
-- a deliberate bypass of the ledger, like disabling a trigger: API roles
-- cannot write the ledger's tables at all, and the owner's hand-written SQL
-- without it gets every check (docs/runbook-ledger.md).

create or replace function ledger.post_entry(
  p_kind ledger.entry_kind,
  p_legs ledger.leg[],
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_reverses_entry_id uuid default null,
  p_entry_id uuid default null          -- lets capture_hold name the entry before writing it
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_entry_id uuid := coalesce(p_entry_id, uuidv7());
  v_legs ledger.leg[];
  v_bad_leg boolean;
  v_found bigint;
  v_unbalanced bigint;
  v_frozen_debit uuid;
begin
  -- One statement merges the legs (one per account: a posting's sequence
  -- comes from its account row), locks every account in id order, and checks
  -- the entry: amounts, accounts, per-currency sums, frozen debits. All
  -- writers lock accounts in id order (holds too), so two entries touching
  -- the same accounts queue instead of deadlocking.
  with merged as (
    select l.account_id, sum(l.amount)::bigint as amount,
           bool_or(l.account_id is null or l.amount is null or l.amount = 0) as bad
      from unnest(p_legs) l group by l.account_id
  ), locked as (
    select a.id, a.currency, a.frozen from ledger.accounts a
     where a.id = any (array(select m.account_id from merged m where m.amount <> 0 and not m.bad))
     order by a.id
       for update
  ), per_currency as (
    select count(*) as legs, sum(m.amount) as total
      from locked k join merged m on m.account_id = k.id
     group by k.currency
  )
  select (select coalesce(array_agg(row(m.account_id, m.amount)::ledger.leg order by m.account_id) filter (where m.amount <> 0), '{}') from merged m),
         (select coalesce(bool_or(m.bad), false) from merged m),
         (select coalesce(sum(g.legs), 0) from per_currency g),
         (select count(*) filter (where g.total <> 0) from per_currency g),
         (select min(k.id::text)::uuid from locked k join merged m on m.account_id = k.id where k.frozen and m.amount < 0)
    into v_legs, v_bad_leg, v_found, v_unbalanced, v_frozen_debit;

  if v_bad_leg then
    raise exception 'Every leg needs an account and a non-zero amount' using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  if v_found <> cardinality(v_legs) then
    raise exception 'An account in this entry does not exist' using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if cardinality(v_legs) < 2 or v_unbalanced > 0 then
    raise exception 'An entry needs at least two accounts and must sum to zero in each currency'
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
  if v_frozen_debit is not null then
    raise exception 'Wallet % is frozen and cannot be debited', v_frozen_debit using errcode = 'PW102'; -- WALLET_FROZEN
  end if;

  -- Write: every account moves in one UPDATE (its guards refuse an
  -- overdraft), and the postings take their sequence, balance_after and
  -- currency from what it returns. The proof is set only around this.
  perform set_config('ledger.posting_entry', v_entry_id::text, true);
  with moved as (
    update ledger.accounts a
       set balance = a.balance + l.amount, version = a.version + 1
      from unnest(v_legs) l
     where a.id = l.account_id
    returning a.id, a.currency, a.balance, a.version, l.amount
  ), e as (
    insert into ledger.entries (id, kind, memo, metadata, idempotency_ref, reverses_entry_id, balanced_at_write)
    values (v_entry_id, p_kind, p_memo, coalesce(p_metadata, '{}'), p_idempotency_ref, p_reverses_entry_id, true)
    returning id
  )
  insert into ledger.postings (entry_id, account_id, currency, amount, balance_after, sequence)
  select e.id, m.id, m.currency, m.amount, m.balance, m.version from e, moved m;
  perform set_config('ledger.posting_entry', '', true);

  return v_entry_id;
end;
$$;
comment on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) is
  'Posts one balanced entry atomically; raises INSUFFICIENT_FUNDS, WALLET_FROZEN, CURRENCY_MISMATCH, ENTRY_UNBALANCED, ACCOUNT_NOT_FOUND.';

-- Amounts are whole minor units from 1 to 10^15 (10 trillion rand): far
-- beyond any real payment, and far from overflowing a bigint balance.
create or replace function ledger.assert_amount(p_amount bigint)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_amount is null or p_amount <= 0 or p_amount > 1000000000000000 then
    raise exception 'The amount must be a whole number of minor units between 1 and 1000000000000000'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
end;
$$;

-- The common case: move an amount from one account to another.
create or replace function ledger.move(
  p_kind ledger.entry_kind,
  p_from uuid,
  p_to uuid,
  p_amount bigint,
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_entry_id uuid default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform ledger.assert_amount(p_amount);
  return ledger.post_entry(p_kind, array[row(p_from, -p_amount), row(p_to, p_amount)]::ledger.leg[],
                           p_memo, p_metadata, p_idempotency_ref, null, p_entry_id);
end;
$$;

revoke all on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) from public;
revoke all on function ledger.assert_amount(bigint) from public;
revoke all on function ledger.move(ledger.entry_kind, uuid, uuid, bigint, text, jsonb, text, uuid) from public;

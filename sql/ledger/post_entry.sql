-- The one way money moves: an entry with two or more legs, written at once.
--
-- The cost of a posting is the product's cost, so this function does the
-- bookkeeping itself, once per entry, in one statement that locks the
-- accounts, moves their balances and writes the entry and its postings.
-- Writers that do not go through here (the owner typing SQL) get the same
-- bookkeeping and checks, one row at a time, from the posting trigger
-- (posting_triggers.sql).
--
-- The proof: while it writes, this function sets the transaction-local
-- setting ledger.posting_entry to the entry's id. The guards trust the rows
-- of that entry: the entry and posting triggers skip them, the entry is
-- marked balanced_at_write (so the deferred balance check skips it, and no
-- posting can be added to it later), and the accounts guard lets their
-- balances move. Setting it by hand is a deliberate bypass of the ledger,
-- like disabling a trigger: API roles cannot write the ledger's tables at
-- all, and the owner's hand-written SQL without it gets every check
-- (docs/runbook-ledger.md).

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
-- Plan the write once per session: its plan does not depend on the values,
-- and planning a four-part statement each call would cost more than running it.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_entry_id uuid := coalesce(p_entry_id, uuidv7());
  v_legs ledger.leg[];
  v_bad_leg boolean;
  v_total numeric;
  v_written bigint;
  v_unbalanced bigint;
  v_missing uuid;
begin
  -- The legs merge into one per account (a posting's sequence comes from its
  -- account row, so an account appears once per entry) and must sum to
  -- zero; no table is read yet.
  select coalesce(array_agg(row(m.account_id, m.amount)::ledger.leg order by m.account_id) filter (where m.amount <> 0), '{}'),
         coalesce(bool_or(m.bad), false),
         coalesce(sum(m.amount), 0)
    into v_legs, v_bad_leg, v_total
    from (select l.account_id, sum(l.amount)::bigint as amount,
                 bool_or(l.account_id is null or l.amount is null or l.amount = 0) as bad
            from unnest(p_legs) l
           group by l.account_id) m;
  if v_bad_leg then
    raise exception 'Every leg needs an account and a non-zero amount' using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  if cardinality(v_legs) < 2 or v_total <> 0 then
    raise exception 'An entry needs at least two accounts and must sum to zero in each currency'
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;

  -- One statement writes it all. `locked` takes the row locks in account id
  -- order (the lock step sits above the sort), and an account is updated only
  -- after its lock: every writer locks accounts in id order (holds too), so
  -- two entries touching the same accounts queue instead of deadlocking.
  -- Frozen wallets are left out of the debits; the counts below notice.
  -- The accounts guard refuses an overdraft (INSUFFICIENT_FUNDS). The
  -- postings take sequence, balance_after and currency from the UPDATE.
  perform set_config('ledger.posting_entry', v_entry_id::text, true);
  with locked as (
    select k.id, l.amount
      from ledger.accounts k
      join unnest(v_legs) l on l.account_id = k.id
     where l.amount > 0 or not k.frozen
     order by k.id
       for update of k
  ), moved as (
    update ledger.accounts a
       set balance = a.balance + k.amount, version = a.version + 1
      from locked k
     where a.id = k.id
    returning a.id, a.currency, a.balance, a.version, k.amount
  ), e as (
    insert into ledger.entries (id, kind, memo, metadata, idempotency_ref, reverses_entry_id, balanced_at_write)
    values (v_entry_id, p_kind, p_memo, coalesce(p_metadata, '{}'), p_idempotency_ref, p_reverses_entry_id, true)
    returning id
  ), posted as (
    insert into ledger.postings (entry_id, account_id, currency, amount, balance_after, sequence)
    select e.id, m.id, m.currency, m.amount, m.balance, m.version from e, moved m
    returning currency, amount
  )
  select coalesce(sum(g.legs), 0), count(*) filter (where g.total <> 0)
    into v_written, v_unbalanced
    from (select count(*) as legs, sum(p.amount) as total from posted p group by p.currency) g;
  perform set_config('ledger.posting_entry', '', true);

  -- Raising here undoes everything above with the statement that called us.
  if v_written <> cardinality(v_legs) then
    select l.account_id into v_missing from unnest(v_legs) l
     where not exists (select from ledger.accounts a where a.id = l.account_id) limit 1;
    if found then
      raise exception 'An account in this entry does not exist' using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
    end if;
    raise exception 'A frozen wallet in this entry cannot be debited' using errcode = 'PW102'; -- WALLET_FROZEN
  end if;
  if v_unbalanced > 0 then
    raise exception 'An entry needs at least two accounts and must sum to zero in each currency'
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
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

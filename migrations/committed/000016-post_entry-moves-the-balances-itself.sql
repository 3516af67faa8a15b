--! Previous: sha1:584c200fcdf22bb5bf5bfcf0d1c3353b9e2befd6
--! Hash: sha1:f4a7b409ce083ce0bff22e790a4c8088b9e81443
--! Message: post_entry moves the balances itself

-- Issue 13: a cheaper posting. post_entry does the bookkeeping itself, once
-- per entry, in one statement (lock the accounts in id order, move their
-- balances, write the entry and its postings) under a transaction-local
-- proof that the triggers trust; writers without it (the owner typing SQL)
-- get every check from the posting trigger, one row at a time. The
-- statement-level apply trigger is gone; the accounts guard compares values
-- and runs no query (held, like the balance, is trusted only from the
-- trigger that moves it).

-- post_entry proves its entries balanced while writing them; the deferred
-- check is for entries written by hand (metadata-only: no table rewrite).
alter table ledger.entries add column if not exists balanced_at_write boolean not null default false;
comment on column ledger.entries.balanced_at_write is
  'True when post_entry proved the entry balanced as it wrote it; false entries are checked at commit.';

--! Included ledger/guards.sql
-- The ledger's invariants, enforced by triggers so that they hold for every
-- writer that is not a superuser: the API's roles, the worker, and the owner
-- typing SQL by hand. The money functions (post_entry.sql, holds.sql) get no
-- special treatment: they pass these checks because they do the right thing.
-- (Dropping or disabling a trigger is DDL; see docs/runbook-ledger.md.)

-- Entries and postings are history: never updated, never deleted. Corrections
-- are new entries (reverse_entry.sql).
create or replace function ledger.tg_append_only()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name in ('entries', 'postings') then
    raise exception 'ledger.% is append-only: % is not allowed; post a reversing entry instead', tg_table_name, lower(tg_op)
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  raise exception 'ledger.% rows are never removed (% refused)', tg_table_name, lower(tg_op)
    using errcode = 'PW121'; -- LEDGER_IMMUTABLE
end;
$$;

create or replace trigger _000_append_only before update or delete on ledger.entries
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_append_only_truncate before truncate on ledger.entries
  for each statement execute function ledger.tg_append_only();
create or replace trigger _000_append_only before update or delete on ledger.postings
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_append_only_truncate before truncate on ledger.postings
  for each statement execute function ledger.tg_append_only();
-- Accounts and holds are updated in place, but never removed.
create or replace trigger _000_no_delete before delete on ledger.accounts
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_no_truncate before truncate on ledger.accounts
  for each statement execute function ledger.tg_append_only();
create or replace trigger _000_no_delete before delete on ledger.holds
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_no_truncate before truncate on ledger.holds
  for each statement execute function ledger.tg_append_only();

-- New entries are stamped with the writing transaction and the real time,
-- whatever the writer supplied. Only post_entry may say that it proved the
-- entry balanced while writing it (balanced_at_write): it does so with its
-- proof set, and writes the stamps itself.
create or replace function ledger.tg_entries_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if new.id::text = current_setting('ledger.posting_entry', true) then
    return new;
  end if;
  new.txid := pg_current_xact_id();
  new.created_at := now();
  new.balanced_at_write := false;
  return new;
end;
$$;
create or replace trigger _100_stamp before insert on ledger.entries
  for each row execute function ledger.tg_entries_before_insert();

-- At commit, every entry written by the transaction must have at least two
-- postings and sum to zero in each currency. Deferred so that the entry can
-- be written before its postings; postings cannot be added to it later
-- (tg_postings_before_insert checks txid), so checking once is enough.
-- Entries post_entry proved balanced while writing them are not queued:
-- the posting trigger refuses postings added to them afterwards.
create or replace function ledger.tg_entries_check_balanced()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_legs bigint;
  v_unbalanced bigint;
begin
  select coalesce(sum(legs), 0), count(*) filter (where total <> 0)
    into v_legs, v_unbalanced
    from (select count(*) as legs, sum(p.amount) as total
            from ledger.postings p
           where p.entry_id = new.id
           group by p.currency) per_currency;
  if v_legs < 2 or v_unbalanced > 0 then
    raise exception 'Entry % does not balance: it needs at least two postings summing to zero in each currency', new.id
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
  return null;
end;
$$;
drop trigger if exists _900_balanced on ledger.entries;
create constraint trigger _900_balanced after insert on ledger.entries
  deferrable initially deferred
  for each row
  when (not new.balanced_at_write)
  execute function ledger.tg_entries_check_balanced();

-- Accounts: identity never changes; balance and version change only together
-- with the posting that explains them, and held only together with the hold
-- that explains it. Available balance of a wallet never goes below zero.
create or replace function ledger.tg_accounts_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Accounts start empty; money arrives only through postings.
  new.balance := 0;
  new.held := 0;
  new.version := 0;
  -- Owned accounts (user and merchant wallets) never go below zero.
  new.allow_negative := new.kind not in ('user_wallet', 'merchant_wallet');
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_start_empty before insert on ledger.accounts
  for each row execute function ledger.tg_accounts_before_insert();

-- Every posting updates an account, so the guard costs a few comparisons
-- when nothing is wrong, and no query. (Not WHEN conditions:
-- PostgreSQL parses and compiles a trigger's WHEN, like each CHECK, once per
-- statement, while a PL/pgSQL function is compiled once per session; most
-- updates here are one-row statements, so the function is the cheaper guard.)
--
-- A balance moves only as a posting moves it: by one version, and written by
-- post_entry while its proof (ledger.posting_entry, post_entry.sql) is set,
-- or from inside another trigger (pg_trigger_depth() > 1): the posting
-- trigger, the one trigger that updates balances. Why trust them instead of
-- looking the posting up: the posting is written after the account (its
-- sequence comes from the account), so there is nothing to look up yet, and
-- the lookup was a third of a posting's cost. Getting past this takes
-- setting the proof by hand or creating a trigger: deliberate, like
-- disabling a trigger (docs/runbook-ledger.md); audit.balance_drift would
-- still show it.
create or replace function ledger.tg_accounts_guard()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if (new.id, new.kind, new.owner_id, new.currency, new.shard, new.allow_negative, new.created_at)
     is distinct from (old.id, old.kind, old.owner_id, old.currency, old.shard, old.allow_negative, old.created_at) then
    raise exception 'An account''s identity (id, kind, owner, currency, shard, sign, creation time) cannot change'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  if (new.balance <> old.balance or new.version <> old.version)
     and (new.version <> old.version + 1
          or (pg_trigger_depth() = 1 and coalesce(current_setting('ledger.posting_entry', true), '') = '')) then
    raise exception 'The balance of account % can change only by posting an entry', new.id
      using errcode = 'PW122'; -- BALANCE_DIRECT_WRITE
  end if;
  -- Held moves only as the hold triggers move it (hold_triggers.sql: the one
  -- trigger that updates held, by the hold's amount as it opens or closes),
  -- so a change made outside any trigger is a direct write. Trusted like the
  -- balance, not re-added: summing the open holds cost a query per hold
  -- placed or closed (0.17 ms with a dozen open holds); audit.balance_drift
  -- re-adds them every day.
  if new.held <> old.held and pg_trigger_depth() = 1 then
    raise exception 'The held amount of account % can change only by placing or closing a hold', new.id
      using errcode = 'PW122'; -- BALANCE_DIRECT_WRITE
  end if;
  -- Also a CHECK constraint; raised here first to give the caller a clear code.
  if not new.allow_negative and new.balance - new.held < 0 then
    raise exception 'Insufficient funds: the available balance of wallet % would be %', new.id, new.balance - new.held
      using errcode = 'PW101'; -- INSUFFICIENT_FUNDS
  end if;
  return new;
end;
$$;
create or replace trigger _100_guard before update on ledger.accounts
  for each row execute function ledger.tg_accounts_guard();

-- Until migration 000016 the guard (this function's predecessor) looked the
-- posting up on every balance change.
drop function if exists ledger.tg_accounts_before_update();

-- Nothing but the functions' owner touches the ledger directly: the API and
-- the worker go through SECURITY DEFINER functions, auditors through views.
revoke all on ledger.currencies, ledger.accounts, ledger.entries, ledger.postings, ledger.holds
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function ledger.tg_append_only() from public;
revoke all on function ledger.tg_entries_before_insert() from public;
revoke all on function ledger.tg_entries_check_balanced() from public;
revoke all on function ledger.tg_accounts_before_insert() from public;
revoke all on function ledger.tg_accounts_guard() from public;
--! EndIncluded ledger/guards.sql
--! Included ledger/posting_triggers.sql
-- A posting is the only thing that moves a balance. post_entry does the
-- bookkeeping for its own postings, once per entry (post_entry.sql); for
-- every other writer (the owner typing SQL) this row trigger does it: one
-- UPDATE adds the amount to the account and returns the new balance and
-- version, which become the posting's balance_after and sequence, whatever
-- the writer supplied. Either way the stored balance equals the last
-- balance_after, which equals the sum of the account's postings, without
-- ever re-summing history.
--
-- The accounts guard (guards.sql) refuses a balance change made outside a
-- trigger and outside post_entry; this is the one trigger that makes one.

create or replace function ledger.tg_postings_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account record;
begin
  -- post_entry's own postings (its proof, ledger.posting_entry, names their
  -- entry) arrive already checked and stamped.
  if new.entry_id::text = current_setting('ledger.posting_entry', true) then
    return new;
  end if;
  -- The entry's writing transaction is read in the same statement, by a
  -- subquery in RETURNING (no second round through the executor). An entry
  -- post_entry wrote is complete (it was proved balanced without the
  -- deferred check), so it is read as no entry at all.
  update ledger.accounts a
     set balance = a.balance + new.amount, version = a.version + 1
   where a.id = new.account_id
  returning a.currency, a.balance, a.version, a.frozen,
            (select e.txid from ledger.entries e where e.id = new.entry_id and not e.balanced_at_write) as entry_txid
    into v_account;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  -- Raising below undoes the UPDATE with the rest of the statement.
  if v_account.entry_txid is distinct from pg_current_xact_id() then
    raise exception 'Postings can be added only to an entry written by hand in the same transaction'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  if new.currency is null then
    new.currency := v_account.currency;
  elsif new.currency <> v_account.currency then
    raise exception 'A % posting cannot go to the % account %', new.currency, v_account.currency, new.account_id
      using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;
  if new.amount < 0 and v_account.frozen then
    raise exception 'Wallet % is frozen and cannot be debited', new.account_id using errcode = 'PW102'; -- WALLET_FROZEN
  end if;

  new.sequence := v_account.version;
  new.balance_after := v_account.balance;  -- bigint overflow raised in the UPDATE, never wraps
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_sequence before insert on ledger.postings
  for each row execute function ledger.tg_postings_before_insert();

-- Until migration 000016 every posting went through the row trigger, and a
-- statement-level trigger then brought the accounts up to date.
drop trigger if exists _200_apply on ledger.postings;
drop function if exists ledger.tg_postings_apply();

revoke all on function ledger.tg_postings_before_insert() from public;
--! EndIncluded ledger/posting_triggers.sql
--! Included ledger/hold_triggers.sql
-- Holds reserve part of a wallet's balance (a withdrawal in progress, a card
-- authorisation). The account's `held` is kept equal to the sum of its open
-- holds by these triggers, so available = balance - held is always current.
-- A hold is placed once and closed once: captured, released or expired.

create or replace function ledger.tg_holds_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_frozen boolean;
begin
  select a.frozen into v_frozen from ledger.accounts a where a.id = new.account_id for update;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if v_frozen then
    raise exception 'Wallet % is frozen; no new holds can be placed on it', new.account_id
      using errcode = 'PW102'; -- WALLET_FROZEN
  end if;
  new.status := 'placed';
  new.captured_amount := null;
  new.capture_entry_id := null;
  new.closed_at := null;
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_placed before insert on ledger.holds
  for each row execute function ledger.tg_holds_before_insert();

create or replace function ledger.tg_holds_before_update()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if (new.id, new.account_id, new.amount, new.expires_at, new.memo, new.created_at)
     is distinct from (old.id, old.account_id, old.amount, old.expires_at, old.memo, old.created_at) then
    raise exception 'A hold''s account, amount, expiry and memo cannot change' using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  if new.status is distinct from old.status then
    if old.status <> 'placed' then
      raise exception 'Hold % is already %', old.id, old.status using errcode = 'PW113'; -- HOLD_NOT_OPEN
    end if;
    new.closed_at := now();
  elsif (new.captured_amount, new.capture_entry_id, new.closed_at)
        is distinct from (old.captured_amount, old.capture_entry_id, old.closed_at) then
    raise exception 'A hold changes only by being captured, released or expired' using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  return new;
end;
$$;
create or replace trigger _100_transition before update on ledger.holds
  for each row execute function ledger.tg_holds_before_update();

-- AFTER, so held moves only once the hold row has passed its own checks; the
-- accounts guard trusts this trigger (the one that updates held) and refuses
-- any other change of held.
create or replace function ledger.tg_holds_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    update ledger.accounts set held = held + new.amount where id = new.account_id;
  elsif old.status = 'placed' and new.status <> 'placed' then
    update ledger.accounts set held = held - old.amount where id = old.account_id;
  end if;
  return null;
end;
$$;
create or replace trigger _200_apply after insert or update on ledger.holds
  for each row execute function ledger.tg_holds_apply();

-- A captured hold must be backed, by commit time, by its entry debiting the
-- account with the captured amount (capture_hold writes both).
create or replace function ledger.tg_holds_check_capture()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from ledger.postings p
                  where p.entry_id = new.capture_entry_id and p.account_id = new.account_id
                    and p.amount = -new.captured_amount) then
    raise exception 'Hold % is marked captured but entry % does not debit its account by %',
      new.id, new.capture_entry_id, new.captured_amount using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
  return null;
end;
$$;
drop trigger if exists _900_capture_backed on ledger.holds;
create constraint trigger _900_capture_backed after update on ledger.holds
  deferrable initially deferred
  for each row when (new.status = 'captured' and old.status = 'placed')
  execute function ledger.tg_holds_check_capture();

revoke all on function ledger.tg_holds_check_capture() from public;
revoke all on function ledger.tg_holds_before_insert() from public;
revoke all on function ledger.tg_holds_before_update() from public;
revoke all on function ledger.tg_holds_apply() from public;
--! EndIncluded ledger/hold_triggers.sql
--! Included ledger/post_entry.sql
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
--! EndIncluded ledger/post_entry.sql

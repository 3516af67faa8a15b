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

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

-- A posting is the only thing that moves a balance. Its sequence number and
-- balance_after are computed here from the locked account row, whatever the
-- writer supplied, and the account is brought up to date right after: so the
-- stored balance always equals the last balance_after, which equals the sum
-- of the account's postings, without ever re-summing history.

create or replace function ledger.tg_postings_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account record;
begin
  -- One lookup for the account (locked: usually already by post_entry, in id
  -- order; locking again is cheap and serialises a hand-written INSERT just
  -- the same) and the entry the posting joins.
  select a.id, a.currency, a.balance, a.version, a.frozen, e.txid as entry_txid
    into v_account
    from ledger.accounts a
    left join ledger.entries e on e.id = new.entry_id
   where a.id = new.account_id
     for update of a;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if v_account.entry_txid is distinct from pg_current_xact_id() then
    raise exception 'Postings can be added only to an entry written in the same transaction'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;

  if new.currency is null then
    new.currency := v_account.currency;
  elsif new.currency <> v_account.currency then
    raise exception 'A % posting cannot go to the % account %', new.currency, v_account.currency, v_account.id
      using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  if new.amount < 0 and v_account.frozen then
    raise exception 'Wallet % is frozen and cannot be debited', v_account.id using errcode = 'PW102'; -- WALLET_FROZEN
  end if;

  new.sequence := v_account.version + 1;
  new.balance_after := v_account.balance + new.amount;  -- bigint overflow raises, never wraps
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_sequence before insert on ledger.postings
  for each row execute function ledger.tg_postings_before_insert();

-- AFTER, so that the accounts guard can see the posting that explains the
-- new balance. Once per INSERT statement, not per row: one UPDATE brings every
-- account of the entry up to date (the transition table holds the statement's
-- postings with the sequence and balance_after the row trigger stamped). Two
-- postings to one account in a single INSERT statement would get the same
-- sequence number and fail on the unique key: post_entry merges legs per
-- account for this reason.
create or replace function ledger.tg_postings_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update ledger.accounts a
     set balance = p.balance_after, version = p.sequence
    from new_postings p
   where a.id = p.account_id;
  return null;
end;
$$;
drop trigger if exists _200_apply on ledger.postings;
create trigger _200_apply after insert on ledger.postings
  referencing new table as new_postings
  for each statement execute function ledger.tg_postings_apply();

revoke all on function ledger.tg_postings_before_insert() from public;
revoke all on function ledger.tg_postings_apply() from public;

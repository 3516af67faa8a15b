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

-- Two-phase movements: place a hold (available drops at once), then capture
-- it (post the entry, fully or in part) or release it; holds left open past
-- their expiry are expired by the worker (ledger_expire_holds).
-- Lock order, as everywhere: accounts by id first, then the hold row.

create or replace function ledger.place_hold(
  p_account_id uuid,
  p_amount bigint,
  p_expires_at timestamptz,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  perform ledger.assert_amount(p_amount);
  if p_expires_at is null or p_expires_at <= now() then
    raise exception 'A hold must expire in the future' using errcode = 'PW126'; -- HOLD_EXPIRY_INVALID
  end if;
  -- The insert trigger locks the account and refuses frozen ones; the
  -- accounts guard refuses a hold larger than the available balance.
  insert into ledger.holds (account_id, amount, expires_at, memo)
  values (p_account_id, p_amount, p_expires_at, p_memo)
  returning id into v_id;
  return v_id;
end;
$$;

-- Locks and returns an open hold, after locking its account (and p_other_account,
-- if any) in id order.
create or replace function ledger.lock_open_hold(p_hold_id uuid, p_other_account uuid default null)
returns ledger.holds
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold ledger.holds;
begin
  select h.* into v_hold from ledger.holds h where h.id = p_hold_id;
  if not found then
    raise exception 'Hold % does not exist', p_hold_id using errcode = 'PW112'; -- HOLD_NOT_FOUND
  end if;
  perform from ledger.accounts a where a.id in (v_hold.account_id, p_other_account) order by a.id for update;
  select h.* into v_hold from ledger.holds h where h.id = p_hold_id for update;
  if v_hold.status <> 'placed' then
    raise exception 'Hold % is already %', p_hold_id, v_hold.status using errcode = 'PW113'; -- HOLD_NOT_OPEN
  end if;
  return v_hold;
end;
$$;

-- Captures p_amount (default: all) of the hold into p_to_account; the rest
-- goes back to the available balance. Returns the entry.
create or replace function ledger.capture_hold(
  p_hold_id uuid,
  p_to_account uuid,
  p_kind ledger.entry_kind,
  p_amount bigint default null,
  p_memo text default null,
  p_metadata jsonb default '{}'
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold ledger.holds := ledger.lock_open_hold(p_hold_id, p_to_account);
  v_amount bigint := coalesce(p_amount, v_hold.amount);
  v_entry_id uuid := uuidv7();
begin
  if v_hold.expires_at <= now() then
    raise exception 'Hold % expired at %', p_hold_id, v_hold.expires_at using errcode = 'PW113'; -- HOLD_NOT_OPEN
  end if;
  if v_amount <= 0 or v_amount > v_hold.amount then
    raise exception 'A capture must be between 1 and the held % minor units', v_hold.amount
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  -- Close the hold first so that the held amount no longer covers it; the
  -- debit below then spends exactly what the hold had reserved.
  update ledger.holds
     set status = 'captured', captured_amount = v_amount, capture_entry_id = v_entry_id
   where id = p_hold_id;
  return ledger.post_entry(p_kind, array[row(v_hold.account_id, -v_amount), row(p_to_account, v_amount)]::ledger.leg[],
                           coalesce(p_memo, v_hold.memo), coalesce(p_metadata, '{}') || jsonb_build_object('hold_id', p_hold_id),
                           null, null, v_entry_id);
end;
$$;

create or replace function ledger.release_hold(p_hold_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform ledger.lock_open_hold(p_hold_id);
  update ledger.holds set status = 'released' where id = p_hold_id;
end;
$$;

-- Expires up to p_limit overdue holds; returns how many. Accounts are locked
-- in id order across the batch, like every other writer; a hold captured or
-- released meanwhile is skipped.
create or replace function ledger.expire_holds(p_limit int default 1000)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold record;
  v_count int := 0;
begin
  for v_hold in
    select h.id, h.account_id from ledger.holds h
     where h.status = 'placed' and h.expires_at <= now()
     order by h.account_id, h.id
     limit p_limit
  loop
    perform from ledger.accounts a where a.id = v_hold.account_id for update;
    update ledger.holds set status = 'expired'
     where id = v_hold.id and status = 'placed' and expires_at <= now();
    if found then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

revoke all on function ledger.place_hold(uuid, bigint, timestamptz, text) from public;
revoke all on function ledger.lock_open_hold(uuid, uuid) from public;
revoke all on function ledger.capture_hold(uuid, uuid, ledger.entry_kind, bigint, text, jsonb) from public;
revoke all on function ledger.release_hold(uuid) from public;
revoke all on function ledger.expire_holds(int) from public;

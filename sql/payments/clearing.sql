-- Funds availability. A deposit's credit is held on the wallet (a ledger
-- hold, so balance, heldBalance and availableBalance tell the truth) until it
-- clears: DEPOSIT_CLEARING_SECONDS after the credit, or earlier when Revio
-- reports the purchase `settled`. The job payments.release_cleared (queued
-- for clears_at, and swept every minute by cron) releases due holds. With
-- DEPOSIT_CLEARING_SECONDS = 0 a credit is available at once (no hold).

-- Holds p_amount of a just-credited deposit until it clears; queues the release.
create or replace function app_private.start_clearing(p_deposit_id uuid, p_amount bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_seconds bigint := app_private.payment_setting('deposit_clearing_seconds');
  v_deposit app_public.deposits;
  v_amount bigint;
  v_hold uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  if v_seconds <= 0 then
    update app_public.deposits set cleared_at = now() where id = p_deposit_id;
    return;
  end if;
  -- A frozen wallet takes no holds; it cannot spend anyway, and unfreezing is
  -- an admin's decision (docs/runbook-payments.md).
  if (select a.frozen from ledger.accounts a where a.id = v_deposit.wallet_id) then
    update app_public.deposits set cleared_at = now() where id = p_deposit_id;
    return;
  end if;
  -- Hold what is still in the wallet of this credit. A deposit that pays a
  -- card order (sql/commerce/card.sql) is spent on the order in the same
  -- transaction, before this runs; that money went to the merchant, so there
  -- is nothing left here to hold, and holding more than is available would
  -- fail the webhook for ever. A chargeback of it still debits the wallet,
  -- through the receivable (chargebacks.sql).
  select least(p_amount, greatest(a.balance - a.held, 0)) into v_amount
    from ledger.accounts a where a.id = v_deposit.wallet_id;
  if v_amount = 0 then
    update app_public.deposits set cleared_at = now() where id = p_deposit_id;
    return;
  end if;
  v_hold := ledger.place_hold(v_deposit.wallet_id, v_amount, 'infinity', 'Deposit clearing ' || p_deposit_id);
  update app_public.deposits
     set clearing_hold_id = v_hold, clears_at = now() + make_interval(secs => v_seconds), cleared_at = null
   where id = p_deposit_id;
  perform graphile_worker.add_job('payments.release_cleared', json_build_object('deposit_id', p_deposit_id),
                                  job_key := 'clearing:' || p_deposit_id,
                                  run_at := now() + make_interval(secs => v_seconds), max_attempts := 5);
end;
$$;

-- Changes the amount still clearing for a deposit (a refund or chargeback
-- takes its share out of it first): releases the open clearing hold and, if
-- p_new_amount > 0, places a new one for that much, with the same clears_at.
-- Returns the amount that was clearing before.
create or replace function app_private.set_clearing_amount(p_deposit_id uuid, p_new_amount bigint)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_old bigint := 0;
  v_hold uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  select h.amount into v_old from ledger.holds h where h.id = v_deposit.clearing_hold_id and h.status = 'placed';
  if v_old is null then
    return 0;
  end if;
  perform ledger.release_hold(v_deposit.clearing_hold_id);
  if p_new_amount > 0 and not (select a.frozen from ledger.accounts a where a.id = v_deposit.wallet_id) then
    v_hold := ledger.place_hold(v_deposit.wallet_id, least(p_new_amount, v_old), 'infinity', 'Deposit clearing ' || p_deposit_id);
  end if;
  update app_public.deposits
     set clearing_hold_id = v_hold, cleared_at = case when v_hold is null then now() else cleared_at end
   where id = p_deposit_id;
  return v_old;
end;
$$;

-- Releases the clearing hold of one deposit (p_deposit_id) or of every
-- deposit whose clears_at has come (null), p_early = true releasing even
-- before clears_at (Revio settled it). Returns how many were released.
create or replace function app_private.release_cleared_deposits(p_deposit_id uuid default null, p_early boolean default false)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit record;
  v_count int := 0;
begin
  for v_deposit in
    select d.id, d.clearing_hold_id from app_public.deposits d
     where d.cleared_at is null and d.clearing_hold_id is not null
       and (p_deposit_id is null or d.id = p_deposit_id)
       and (p_early or d.clears_at <= now())
     order by d.wallet_id, d.id
     limit 1000
  loop
    -- Lock the deposit and re-check: a refund or chargeback may have changed the hold meanwhile.
    perform from app_public.deposits d where d.id = v_deposit.id and d.cleared_at is null
                                             and d.clearing_hold_id = v_deposit.clearing_hold_id for update;
    if found then
      if exists (select from ledger.holds h where h.id = v_deposit.clearing_hold_id and h.status = 'placed') then
        perform ledger.release_hold(v_deposit.clearing_hold_id);
      end if;
      update app_public.deposits set cleared_at = now() where id = v_deposit.id;
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

revoke all on function app_private.start_clearing(uuid, bigint) from public;
revoke all on function app_private.set_clearing_amount(uuid, bigint) from public;
revoke all on function app_private.release_cleared_deposits(uuid, boolean) from public;

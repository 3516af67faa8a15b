--! Previous: sha1:208087a4d86238e28d3d3ddec4e6b81a72155752
--! Hash: sha1:aeba1e0117b49fa4296430f0bd0150004b3b525b
--! Message: clearing holds what is left

-- A deposit that pays a card order leaves nothing in the wallet to hold while
-- it clears (the webhook failed for ever when clearing was on).
--! Included payments/clearing.sql
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
--! EndIncluded payments/clearing.sql
--! Included worker/grants.sql
-- The job worker's privileges, all in this one file (issue 9 §5).
--
-- The worker logs in as its own role, app_worker (created by
-- src/db/bootstrap.ts; docs/runbook.md), never as the owner: the owner is for
-- migrations only. It may EXECUTE exactly the functions its tasks call, each
-- SECURITY DEFINER with a pinned search_path, and use graphile-worker's schema
-- (app_private.grant_worker_queue below). Nothing else: no table of ours.
--
-- TASK AUTHORS: when a task (src/worker/tasks, or a domain's src/<domain>/tasks.ts) calls a new SQL function, add
-- it to the list below (and keep this file --!include'd LAST in current.sql:
-- `create or replace function` resets SECURITY DEFINER, so a later re-include
-- of the function's own file must be followed by this one).
-- tests/worker-privileges.test.ts fails if a task's function is missing here.

grant usage on schema app_private, ledger, commerce to app_worker;

do $$
declare
  v_fn regprocedure;
begin
  foreach v_fn in array array[
    -- ledger_expire_holds
    'ledger.expire_holds(int)',
    -- ledger_purge_idempotency
    'app_private.purge_idempotency_records(interval, int)',
    -- revio.purge_deliveries
    'app_private.purge_revio_deliveries(int, int, int)',
    -- revio.create_purchase
    'app_private.deposit_for_purchase(uuid)',
    'app_private.fail_deposit(uuid, text)',
    'app_private.mark_revio_requested(text, uuid)',
    -- revio.refund_purchase
    'app_private.refund_for_revio(uuid)',
    'app_private.mark_refund_requested(uuid, bigint)',
    'app_private.mark_refund_submitted(uuid, text)',
    'app_private.fail_refund(uuid, text)',
    -- payments.release_cleared
    'app_private.release_cleared_deposits(uuid, boolean)',
    -- revio.create_payout
    'app_private.withdrawal_for_payout(uuid)',
    'app_private.fail_withdrawal(uuid, text)',
    -- every Revio job (src/worker/tasks/revio-job.ts)
    'app_private.flag_payment(text, uuid, text)',
    'app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text)',
    -- revio.reconcile_pending / revio.reconcile_daily
    'app_private.revio_objects_to_reconcile(interval, int)',
    'app_private.reconcile_revio_object(text, uuid, text)',
    'app_private.revio_objects_for_daily_check(timestamptz)',
    'app_private.record_revio_reconciliation(jsonb)',
    -- send_email (src/worker/tasks/send-email.ts)
    'app_private.email_to_send(bigint)',
    'app_private.mark_email_sent(bigint)',
    -- voting_close_events / voting_snapshot_leaderboards (src/voting/tasks.ts)
    'app_private.close_due_events()',
    'app_private.snapshot_leaderboards()',
    -- commerce_expire_reservations (src/commerce/tasks.ts)
    'commerce.expire_reservations(int, uuid[])'
  ]::regprocedure[] loop
    -- Runs as the owner, whatever the caller; each of these pins search_path
    -- in its own file (tests/admin.test.ts-style check in the worker test).
    execute format('alter function %s security definer', v_fn);
    execute format('grant execute on function %s to app_worker', v_fn);
  end loop;
end
$$;

-- graphile-worker's own schema: the worker takes, completes and fails jobs,
-- and keeps cron state there. Installed by graphile-worker's migrations as the
-- owner (npm run migrate, installWorkerSchema), which calls this afterwards;
-- called here too for a database where the schema already exists.
-- graphile-worker turns row-level security on for its private tables (no
-- policy: only their owner may touch them), so app_worker also gets one
-- policy per such table that lets it see and change every row.
create or replace function app_private.grant_worker_queue()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_table regclass;
begin
  if to_regnamespace('graphile_worker') is null then
    return;
  end if;
  grant usage on schema graphile_worker to app_worker;
  grant select, insert, update, delete on all tables in schema graphile_worker to app_worker;
  grant usage, select on all sequences in schema graphile_worker to app_worker;
  grant execute on all functions in schema graphile_worker to app_worker;
  for v_table in
    select c.oid::regclass from pg_class c
     where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind = 'r' and c.relrowsecurity
       and not exists (select from pg_policy p where p.polrelid = c.oid and p.polname = 'app_worker_queue')
  loop
    execute format('create policy app_worker_queue on %s for all to app_worker using (true) with check (true)', v_table);
  end loop;
end;
$$;
revoke all on function app_private.grant_worker_queue() from public;
select app_private.grant_worker_queue();
--! EndIncluded worker/grants.sql

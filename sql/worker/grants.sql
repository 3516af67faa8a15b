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
    -- worker liveness (src/worker/heartbeat.ts, worker_release_stale_locks)
    'app_private.worker_heartbeat(text, text, int, bigint[])',
    'app_private.worker_signoff(text)',
    'app_private.release_stale_worker_locks(interval)',
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

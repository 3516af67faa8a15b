--! Previous: sha1:aeba1e0117b49fa4296430f0bd0150004b3b525b
--! Hash: sha1:9e0414787b6f6620ed9ca8ea3940ac2ee8bb29c6
--! Message: worker heartbeats

-- ==== reliability ====
-- Worker liveness (issue 14): one row per graphile-worker pool, refreshed every
-- few seconds. A pool whose row goes stale was killed (kill -9, OOM, lost
-- host); its job locks are released by app_private.release_stale_worker_locks
-- instead of waiting for graphile-worker's 4-hour lock timeout.
create table if not exists app_private.worker_heartbeats (
  worker_id text primary key,   -- graphile-worker's pool id: what jobs.locked_by holds
  hostname text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  seen_at timestamptz not null default now()
);
-- The jobs the pool says it is running: a lock it holds on any other job is
-- orphaned (graphile-worker could not record that job's outcome, e.g. while
-- PostgreSQL restarted) and is freed like a dead worker's.
alter table app_private.worker_heartbeats add column if not exists running_jobs bigint[] not null default '{}';
-- Every release of a dead worker's locks (for the runbook and the alert).
create table if not exists app_private.worker_lock_recoveries (
  id bigint generated always as identity primary key,
  recovered_at timestamptz not null default now(),
  worker_ids text[] not null,
  jobs int not null
);
--! Included worker/heartbeats.sql
-- Worker heartbeats and the release of a dead worker's job locks (issue 14,
-- docs/runbook.md "Stale job locks"). graphile-worker 0.18 locks a job with
-- its pool id and only frees locks older than 4 hours; it has no liveness of
-- its own (that is Worker Pro). So each pool records itself here every few
-- seconds (src/worker/heartbeat.ts), and any live worker frees the jobs and
-- queues locked by pools whose heartbeat is stale. Re-running such a job is
-- safe: the Revio tasks look their reference up before creating anything.
--
-- plpgsql, not sql: graphile_worker's schema is installed by the worker after
-- the migrations, so its tables are resolved when the function runs.

-- Upsert this pool's row and the jobs it is running; called every few seconds.
drop function if exists app_private.worker_heartbeat(text, text, int);
create or replace function app_private.worker_heartbeat(p_worker_id text, p_hostname text, p_pid int, p_running_jobs bigint[] default '{}')
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_worker_id is null or length(p_worker_id) not between 1 and 200 then
    raise exception 'worker id must be 1..200 characters' using errcode = 'PW700'; -- WORKER_ID_INVALID
  end if;
  insert into app_private.worker_heartbeats as h (worker_id, hostname, pid, running_jobs)
  values (p_worker_id, left(coalesce(p_hostname, ''), 200), coalesce(p_pid, 0), coalesce(p_running_jobs, '{}'))
  on conflict (worker_id) do update set seen_at = now(), hostname = excluded.hostname, pid = excluded.pid, running_jobs = excluded.running_jobs;
end;
$$;
comment on function app_private.worker_heartbeat(text, text, int, bigint[]) is
  'A graphile-worker pool says it is alive and which jobs it runs (src/worker/heartbeat.ts).';

-- A pool that stops cleanly removes its row (its jobs are already unlocked).
create or replace function app_private.worker_signoff(p_worker_id text)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  delete from app_private.worker_heartbeats where worker_id = p_worker_id;
$$;

-- Lockers whose heartbeat is older than p_stale_after (or who never sent one)
-- and whose lock is older than p_stale_after too (so a pool that locked a job
-- a moment before its first heartbeat is safe). Shared by the release and by
-- metrics_snapshot.
create or replace function app_private.stale_job_lockers(p_stale_after interval)
returns table (worker_id text, jobs bigint)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('graphile_worker._private_jobs') is null then
    return;
  end if;
  return query
    select l.locked_by, count(*) filter (where l.is_job)
      from (select j.locked_by, j.locked_at, true as is_job from graphile_worker._private_jobs j where j.locked_by is not null
            union all
            select q.locked_by, q.locked_at, false from graphile_worker._private_job_queues q where q.locked_by is not null) l
     where l.locked_at < now() - p_stale_after
       and not exists (select 1 from app_private.worker_heartbeats h
                        where h.worker_id = l.locked_by and h.seen_at >= now() - p_stale_after)
     group by l.locked_by;
end;
$$;

-- Frees every job and queue held by a stale locker (graphile_worker.force_unlock_workers,
-- which leaves run_at in the past, so the job is ready at once), records the
-- recovery, and forgets heartbeats a day old. Returns the number of jobs freed.
create or replace function app_private.release_stale_worker_locks(p_stale_after interval default interval '30 seconds')
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_workers text[];
  v_jobs int;
  v_orphans int;
begin
  if p_stale_after is null or p_stale_after < interval '5 seconds' then
    raise exception 'stale_after must be at least 5 seconds' using errcode = 'PW701'; -- STALE_AFTER_TOO_SHORT
  end if;
  if to_regclass('graphile_worker._private_jobs') is null then
    return 0;
  end if;
  delete from app_private.worker_heartbeats where seen_at < now() - interval '1 day';
  select array_agg(s.worker_id), coalesce(sum(s.jobs), 0) into v_workers, v_jobs
    from app_private.stale_job_lockers(p_stale_after) s;
  -- Jobs locked by a live pool that does not list them as running: their
  -- outcome was never recorded (PostgreSQL was down when the attempt ended).
  with orphans as (
    update graphile_worker._private_jobs j
       set locked_at = null, locked_by = null,
           last_error = coalesce(j.last_error, 'attempt ' || j.attempts || ' ended without its outcome being recorded')
      from app_private.worker_heartbeats h
     where h.worker_id = j.locked_by and h.seen_at >= now() - p_stale_after
       and j.locked_at < now() - p_stale_after and not (j.id = any(h.running_jobs))
    returning j.locked_by
  )
  select count(*) into v_orphans from orphans;
  if v_orphans > 0 then
    insert into app_private.worker_lock_recoveries (worker_ids, jobs) values ('{orphaned on a live worker}', v_orphans);
  end if;
  if v_workers is null then
    return v_orphans;
  end if;
  -- The killed attempt counts (so a job that kills its worker every time still
  -- ends); say why in last_error. A job that was on its last attempt is now a
  -- dead letter: flag its open deposit or withdrawal for a person, as the
  -- Revio tasks do themselves when their last attempt fails.
  update graphile_worker._private_jobs j
     set last_error = 'attempt ' || j.attempts || ' stopped: its worker stopped heartbeating (killed?)'
   where j.locked_by = any(v_workers);
  perform app_private.flag_payment(split_part(j.key, ':', 1), substr(j.key, strpos(j.key, ':') + 1)::uuid,
                                   'The job for it died with its worker on its last attempt (' || j.attempts || ' of ' || j.max_attempts || ').')
     from graphile_worker._private_jobs j
    where j.locked_by = any(v_workers) and j.attempts >= j.max_attempts
      and j.key ~ '^(deposit|withdrawal):[0-9a-f-]{36}$';
  perform graphile_worker.force_unlock_workers(v_workers);
  delete from app_private.worker_heartbeats where worker_id = any(v_workers);
  insert into app_private.worker_lock_recoveries (worker_ids, jobs) values (v_workers, v_jobs);
  return v_jobs + v_orphans;
end;
$$;
comment on function app_private.release_stale_worker_locks(interval) is
  'Frees the job locks of workers whose heartbeat is stale (killed); run by every worker (heartbeat loop and cron).';

revoke all on function app_private.worker_heartbeat(text, text, int, bigint[]), app_private.worker_signoff(text),
                       app_private.stale_job_lockers(interval), app_private.release_stale_worker_locks(interval) from public;
-- app_worker's EXECUTE on worker_heartbeat, worker_signoff and
-- release_stale_worker_locks is granted with the rest in worker/grants.sql.
--! EndIncluded worker/heartbeats.sql
--! Included metrics/snapshot.sql
-- What /metrics reports about the database (src/metrics/database.ts). The API
-- connects only as `authenticator`, which can read none of these tables, so
-- one SECURITY DEFINER function answers with counts and ages as jsonb: no
-- row, amount, email or id ever leaves it.
--
-- p_ledger_checks = false (every scrape) stays cheap: the job queue (small:
-- graphile-worker deletes completed jobs), open deposits and withdrawals
-- (partial indexes *_open_idx) and open reconciliation discrepancies (partial
-- index). p_ledger_checks = true (every METRICS_LEDGER_CHECK_INTERVAL_SECONDS)
-- adds what reads whole tables: counts by every status, payments needing
-- attention, and the ledger invariants, which must all read zero: currencies
-- whose trial balance is not zero, unbalanced entries, balance drift rows
-- (reads every posting) and disabled ledger guards.
create or replace function app_private.metrics_snapshot(p_ledger_checks boolean default false)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_result jsonb;
  v_jobs jsonb := '[]';
begin
  -- graphile-worker installs its schema when the worker first starts.
  if to_regclass('graphile_worker.jobs') is not null then
    select coalesce(jsonb_agg(jsonb_build_object(
             'task', t.task,
             'ready', t.ready,
             'scheduled', t.scheduled,
             'running', t.running,
             'dead', t.dead,
             'oldest_ready_seconds', t.oldest_ready_seconds) order by t.task), '[]')
      into v_jobs
      from (
        select j.task_identifier as task,
               count(*) filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at <= now()) as ready,
               count(*) filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at > now()) as scheduled,
               count(*) filter (where j.locked_at is not null) as running,
               count(*) filter (where j.attempts >= j.max_attempts and j.locked_at is null) as dead,
               coalesce(extract(epoch from now() - min(j.run_at)
                          filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at <= now())), 0) as oldest_ready_seconds
          from graphile_worker.jobs j
         group by j.task_identifier
      ) t;
  end if;

  v_result := jsonb_build_object(
    'jobs', v_jobs,
    'deposits_open', (
      select coalesce(jsonb_agg(jsonb_build_object('status', s.status, 'count', s.n, 'oldest_seconds', s.oldest) order by s.status), '[]')
        from (select d.status::text as status, count(*) as n, extract(epoch from now() - min(d.created_at)) as oldest
                from app_public.deposits d
               where d.status in ('pending', 'awaiting_payment')
               group by d.status) s),
    'withdrawals_open', (
      select coalesce(jsonb_agg(jsonb_build_object('status', s.status, 'count', s.n, 'oldest_seconds', s.oldest) order by s.status), '[]')
        from (select w.status::text as status, count(*) as n, extract(epoch from now() - min(w.created_at)) as oldest
                from app_public.withdrawals w
               where w.status in ('requested', 'submitted')
               group by w.status) s),
    'discrepancies_open', (select count(*) from app_private.revio_discrepancies r where r.resolved_at is null),
    -- Chargebacks and Revio's own refunds waiting for an admin (partial index
    -- reversals_wallet_open_idx), and what users owe (a few system accounts).
    'reversals_unreviewed', (
      select coalesce(jsonb_object_agg(s.kind, s.n), '{}')
        from (select r.kind, count(*) as n from app_public.reversals r where r.reviewed_at is null group by r.kind) s),
    'chargeback_receivable', (
      select coalesce(jsonb_object_agg(s.currency, s.owed), '{}')
        from (select a.currency, -sum(a.balance) as owed from ledger.accounts a
               where a.kind::text = 'chargeback_receivable' group by a.currency) s),
    -- Worker liveness (sql/worker/heartbeats.sql): pools seen in the last 30 s;
    -- jobs still locked by a pool silent for over 2 minutes (the release runs
    -- every 15 s, so any is a release that is not happening); releases so far.
    'workers_alive', (select count(*) from app_private.worker_heartbeats h where h.seen_at >= now() - interval '30 seconds'),
    'jobs_locked_by_dead_workers', (select coalesce(sum(s.jobs), 0) from app_private.stale_job_lockers(interval '2 minutes') s),
    'worker_lock_recoveries', (select count(*) from app_private.worker_lock_recoveries)
  );

  if p_ledger_checks then
    v_result := v_result || jsonb_build_object(
      'deposits_by_status', (
        select coalesce(jsonb_object_agg(s.status, s.n), '{}')
          from (select d.status::text as status, count(*) as n from app_public.deposits d group by d.status) s),
      'withdrawals_by_status', (
        select coalesce(jsonb_object_agg(s.status, s.n), '{}')
          from (select w.status::text as status, count(*) as n from app_public.withdrawals w group by w.status) s),
      'deposits_needing_attention', (select count(*) from app_public.deposits d where d.needs_attention),
      'withdrawals_needing_attention', (select count(*) from app_public.withdrawals w where w.needs_attention),
      'trial_balance_nonzero_currencies', (select count(*) from audit.trial_balance t where t.net_balance <> 0),
      'unbalanced_entries', (select count(*) from audit.unbalanced_entries),
      'balance_drift_rows', (select count(*) from audit.balance_drift),
      'ledger_guards_enabled', (select count(*) from audit.ledger_guards g where g.enabled),
      'ledger_guards_disabled', (select count(*) from audit.ledger_guards g where not g.enabled)
    );
  end if;
  return v_result;
end;
$$;
comment on function app_private.metrics_snapshot(boolean) is
  'Counts and ages for /metrics (no row data). Cheap without p_ledger_checks; with it, reads whole tables (ledger invariants).';
revoke all on function app_private.metrics_snapshot(boolean) from public;
grant execute on function app_private.metrics_snapshot(boolean) to authenticator;
--! EndIncluded metrics/snapshot.sql
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
--! EndIncluded worker/grants.sql

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
--!include worker/heartbeats.sql
--!include metrics/snapshot.sql
--!include worker/grants.sql

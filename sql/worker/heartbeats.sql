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

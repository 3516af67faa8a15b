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

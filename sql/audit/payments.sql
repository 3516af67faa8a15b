-- Read-only views of the payment flows for DBAs and auditors (app_auditor).
-- docs/runbook-payments.md says what each should show and what to do.

-- Every Revio delivery with its outcome, newest first when ordered by id.
create or replace view audit.revio_webhook_log as
  select d.id, d.received_at, d.source, d.signature_ok, d.object_type, d.object_id, d.event_type, d.status,
         d.updated_on, d.outcome, d.detail, d.deposit_id, d.withdrawal_id, d.headers, d.body,
         -- The whole body's SHA-256 and size: a bad-signature body keeps only its first 1 kB.
         d.body_sha256, d.body_bytes
    from app_private.revio_deliveries d;

-- Events about objects that are neither our deposits nor our withdrawals.
create or replace view audit.unmatched_revio_events as
  select d.id, d.received_at, d.source, d.object_type, d.object_id, d.event_type, d.status, d.detail, d.body
    from app_private.revio_deliveries d
   where d.outcome = 'unmatched';

-- Deposits and withdrawals a person must look at: retries exhausted, amount
-- mismatch, payment after closing, a second Revio object, …
create or replace view audit.payments_needing_attention as
  select 'deposit' as kind, d.id, u.email as owner_email, d.status::text, d.amount, d.currency, d.revio_purchase_id as revio_id,
         d.attention_reason, d.created_at, d.updated_at
    from app_public.deposits d join app_public.users u on u.id = d.user_id
   where d.needs_attention
  union all
  select 'withdrawal', w.id, u.email, w.status::text, w.amount, w.currency, w.revio_payout_id,
         w.attention_reason, w.created_at, w.updated_at
    from app_public.withdrawals w join app_public.users u on u.id = w.user_id
   where w.needs_attention;

-- Jobs that used up their attempts (graphile-worker keeps them): the dead
-- letters, with the last error and the deposit or withdrawal they were for.
-- A function, because graphile_worker's schema is installed by the worker
-- after the migrations (src/worker/runner.ts).
create or replace function audit.dead_jobs()
returns table (job_id bigint, task text, job_key text, attempts int, max_attempts int, last_error text,
               failed_at timestamptz, deposit_id uuid, withdrawal_id uuid, payment_status text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('graphile_worker.jobs') is null then
    return;
  end if;
  return query
    select j.id, j.task_identifier, j.key, j.attempts::int, j.max_attempts::int, j.last_error, j.updated_at,
           d.id, w.id, coalesce(d.status::text, w.status::text)
      from graphile_worker.jobs j
      left join app_public.deposits d on j.key like 'deposit:%' and d.id::text = substr(j.key, 9)
      left join app_public.withdrawals w on j.key like 'withdrawal:%' and w.id::text = substr(j.key, 12)
     where j.attempts >= j.max_attempts and j.locked_at is null
     order by j.updated_at desc;
end;
$$;
create or replace view audit.dead_jobs as select * from audit.dead_jobs();

-- Differences between Revio and the ledger found by the daily reconciliation
-- (revio.reconcile_daily) and not yet marked resolved.
create or replace view audit.revio_discrepancies as
  select r.id, r.found_at, r.kind, r.object_type, r.object_id, r.deposit_id, r.withdrawal_id, r.currency,
         r.ledger_amount, r.revio_amount, r.detail, r.run_id
    from app_private.revio_discrepancies r
   where r.resolved_at is null;

revoke all on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
              audit.dead_jobs, audit.revio_discrepancies from public;
grant select on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
                audit.dead_jobs, audit.revio_discrepancies to app_auditor;
revoke all on function audit.dead_jobs() from public;
grant execute on function audit.dead_jobs() to app_auditor;

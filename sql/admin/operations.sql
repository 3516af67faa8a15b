-- Admin operations on wallets, the job queue and the payment flows. Each
-- checks the caller (app_private.assert_admin), needs a reason where it
-- changes something, and writes one line to the admin log.

-- Freezing stops debits (transfers out, holds, withdrawals); credits still arrive.
create or replace function app_public.admin_set_wallet_frozen(wallet_id uuid, frozen boolean, reason text)
returns app_public.admin_wallets
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_set_wallet_frozen.reason);
  v_was boolean;
  v_wallet app_public.admin_wallets;
begin
  select a.frozen into v_was from ledger.accounts a
   where a.id = admin_set_wallet_frozen.wallet_id and a.kind = 'user_wallet';
  if not found or admin_set_wallet_frozen.frozen is null then
    raise exception 'No such wallet' using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  perform ledger.set_frozen(admin_set_wallet_frozen.wallet_id, admin_set_wallet_frozen.frozen);
  perform app_private.log_admin_action(case when admin_set_wallet_frozen.frozen then 'freeze_wallet' else 'unfreeze_wallet' end,
    'wallet', admin_set_wallet_frozen.wallet_id::text,
    jsonb_build_object('was_frozen', v_was, 'reason', v_reason));
  select w.* into v_wallet from app_public.admin_wallets w where w.id = admin_set_wallet_frozen.wallet_id;
  return v_wallet;
end;
$$;
comment on function app_public.admin_set_wallet_frozen(uuid, boolean, text) is
  'Admins only: freeze (true) or unfreeze (false) a wallet. A frozen wallet receives money but cannot send it. Logged.';

-- Dead letters: jobs that used up their attempts (audit.dead_jobs).
create or replace function app_public.admin_dead_jobs()
returns table (job_id bigint, task text, job_key text, attempts int, max_attempts int, last_error text,
               failed_at timestamptz, deposit_id uuid, withdrawal_id uuid, payment_status text)
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query select * from audit.dead_jobs();
end;
$$;
comment on function app_public.admin_dead_jobs() is 'Admins only: jobs that used up their attempts (dead letters), newest first.';

-- Runs a dead job again at once with a fresh set of attempts.
create or replace function app_public.admin_retry_job(job_id bigint, reason text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_retry_job.reason);
  v_job record;
begin
  select d.* into v_job from audit.dead_jobs() d where d.job_id = admin_retry_job.job_id;
  if v_job.job_id is null then
    raise exception 'No dead job has that id' using errcode = 'PW305'; -- JOB_NOT_DEAD
  end if;
  -- WorkerUtils.rescheduleJobs treats attempts 0 as "unchanged"; the SQL function does not.
  perform graphile_worker.reschedule_jobs(array[admin_retry_job.job_id], run_at := now(), attempts := 0);
  perform app_private.log_admin_action('retry_job', 'job', admin_retry_job.job_id::text,
    jsonb_build_object('task', v_job.task, 'job_key', v_job.job_key, 'attempts', v_job.attempts,
                       'last_error', left(v_job.last_error, 500), 'reason', v_reason));
  return true;
end;
$$;
comment on function app_public.admin_retry_job(bigint, text) is 'Admins only: run a dead job again now, with its attempts reset. Logged.';

-- Open reconciliation differences (audit.revio_discrepancies).
create or replace function app_public.admin_open_discrepancies()
returns table (id bigint, found_at timestamptz, kind text, object_type text, object_id text, deposit_id uuid,
               withdrawal_id uuid, currency text, ledger_amount bigint, revio_amount bigint, detail text)
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query
    select r.id, r.found_at, r.kind, r.object_type, r.object_id, r.deposit_id, r.withdrawal_id, r.currency::text,
           r.ledger_amount, r.revio_amount, r.detail
      from audit.revio_discrepancies r
     order by r.found_at;
end;
$$;
comment on function app_public.admin_open_discrepancies() is 'Admins only: reconciliation differences not yet resolved, oldest first.';

create or replace function app_public.admin_resolve_discrepancy(discrepancy_id bigint, note text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_resolve_discrepancy.note);
  v_kind text;
begin
  update app_private.revio_discrepancies r
     set resolved_at = now(), resolved_by = v_admin, resolution_note = v_note
   where r.id = admin_resolve_discrepancy.discrepancy_id and r.resolved_at is null
  returning r.kind into v_kind;
  if not found then
    raise exception 'No open discrepancy has that id' using errcode = 'PW306'; -- DISCREPANCY_NOT_FOUND
  end if;
  perform app_private.log_admin_action('resolve_discrepancy', 'discrepancy', admin_resolve_discrepancy.discrepancy_id::text,
    jsonb_build_object('kind', v_kind, 'note', v_note));
  return true;
end;
$$;
comment on function app_public.admin_resolve_discrepancy(bigint, text) is
  'Admins only: mark a reconciliation difference resolved, with a note (money is corrected with an adjustment). Logged.';

-- Deposits and withdrawals flagged needs_attention (audit.payments_needing_attention).
create or replace function app_public.admin_flagged_payments()
returns table (kind text, id uuid, owner_id uuid, status text, amount bigint, currency text, revio_id text,
               attention_reason text, created_at timestamptz, updated_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query
    select 'deposit'::text, d.id, d.user_id, d.status::text, d.amount, d.currency::text, d.revio_purchase_id,
           d.attention_reason, d.created_at, d.updated_at
      from app_public.deposits d where d.needs_attention
    union all
    select 'withdrawal'::text, w.id, w.user_id, w.status::text, w.amount, w.currency::text, w.revio_payout_id,
           w.attention_reason, w.created_at, w.updated_at
      from app_public.withdrawals w where w.needs_attention
    order by 9;
end;
$$;
comment on function app_public.admin_flagged_payments() is 'Admins only: deposits and withdrawals that need a person to look, oldest first.';

-- Clears the flag once a person has dealt with it (retrying a job, an
-- adjustment, talking to Revio); the reason stays on the row, the note in the log.
create or replace function app_public.admin_resolve_flagged_payment(kind text, payment_id uuid, note text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_resolve_flagged_payment.note);
  v_reason text;
  v_status text;
begin
  if admin_resolve_flagged_payment.kind = 'deposit' then
    update app_public.deposits d set needs_attention = false
     where d.id = admin_resolve_flagged_payment.payment_id and d.needs_attention
    returning d.attention_reason, d.status::text into v_reason, v_status;
  elsif admin_resolve_flagged_payment.kind = 'withdrawal' then
    update app_public.withdrawals w set needs_attention = false
     where w.id = admin_resolve_flagged_payment.payment_id and w.needs_attention
    returning w.attention_reason, w.status::text into v_reason, v_status;
  end if;
  if v_status is null then
    raise exception 'No flagged deposit or withdrawal has that id' using errcode = 'PW307'; -- PAYMENT_NOT_FLAGGED
  end if;
  perform app_private.log_admin_action('resolve_flagged_payment', admin_resolve_flagged_payment.kind,
    admin_resolve_flagged_payment.payment_id::text,
    jsonb_build_object('attention_reason', v_reason, 'status', v_status, 'note', v_note));
  return true;
end;
$$;
comment on function app_public.admin_resolve_flagged_payment(text, uuid, text) is
  'Admins only: clear needs_attention on a deposit or withdrawal (kind: deposit or withdrawal), with a note. Logged.';

revoke all on function app_public.admin_set_wallet_frozen(uuid, boolean, text) from public;
revoke all on function app_public.admin_dead_jobs() from public;
revoke all on function app_public.admin_retry_job(bigint, text) from public;
revoke all on function app_public.admin_open_discrepancies() from public;
revoke all on function app_public.admin_resolve_discrepancy(bigint, text) from public;
revoke all on function app_public.admin_flagged_payments() from public;
revoke all on function app_public.admin_resolve_flagged_payment(text, uuid, text) from public;
grant execute on function app_public.admin_set_wallet_frozen(uuid, boolean, text) to app_admin;
grant execute on function app_public.admin_dead_jobs() to app_admin;
grant execute on function app_public.admin_retry_job(bigint, text) to app_admin;
grant execute on function app_public.admin_open_discrepancies() to app_admin;
grant execute on function app_public.admin_resolve_discrepancy(bigint, text) to app_admin;
grant execute on function app_public.admin_flagged_payments() to app_admin;
grant execute on function app_public.admin_resolve_flagged_payment(text, uuid, text) to app_admin;

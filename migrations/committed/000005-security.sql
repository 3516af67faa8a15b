--! Previous: sha1:24bc4959bbffbc1333b470f8d8cd4f212fec689e
--! Hash: sha1:19a76a7800042f01b921e07858dcd1ace4a76bf3
--! Message: security

-- Issue 5, security half: admin and auditor roles, the admin audit log,
-- maker-checker balance adjustments, rate limits and personal-data erasure.
-- Tables here (idempotent: db:watch re-runs this file); functions, views,
-- policies and grants in sql/admin, sql/abuse, sql/privacy.

-- A system account for manual balance adjustments (the other side of every
-- approved adjustment). Not used in this transaction, so adding the value is safe.
alter type ledger.account_kind add value if not exists 'adjustments';

-- Erasure (deleteMyAccount, adminEraseUser) pseudonymises the row; it is never deleted.
alter table app_public.users add column if not exists erased_at timestamptz;
comment on column app_public.users.erased_at is 'When the person''s personal data was erased (GDPR); the row stays for the ledger.';

-- Who resolved a reconciliation difference, and how.
alter table app_private.revio_discrepancies add column if not exists resolved_by uuid;
alter table app_private.revio_discrepancies add column if not exists resolution_note text;

-- Every admin action: append-only (sql/admin/audit_log.sql), read through audit.admin_actions.
create table if not exists app_private.admin_actions (
  id          bigint generated always as identity primary key,
  occurred_at timestamptz not null default clock_timestamp(),
  -- The admin's user id; null when the owner connection acted (npm run admin:grant).
  actor_id    uuid,
  actor       text not null check (actor in ('admin', 'cli')),
  action      text not null,
  target_type text,
  target_id   text,
  details     jsonb not null default '{}',
  client_ip   inet,
  request_id  text
);
create index if not exists admin_actions_occurred_at_idx on app_private.admin_actions using brin (occurred_at);
create index if not exists admin_actions_actor_idx on app_private.admin_actions (actor_id);

-- Maker-checker adjustments: one admin requests, a different admin approves
-- (which posts the entry) or rejects.
do $$ begin
  create type app_public.adjustment_status as enum ('pending', 'approved', 'rejected');
exception when duplicate_object then null;
end $$;

create table if not exists app_public.balance_adjustments (
  id            uuid primary key default uuidv7(),
  wallet_id     uuid not null references ledger.accounts,
  amount        bigint not null check (amount <> 0 and abs(amount) <= 1000000000000000),
  currency      char(3) not null references ledger.currencies,
  reason        text not null check (length(reason) between 1 and 500),
  status        app_public.adjustment_status not null default 'pending',
  requested_by  uuid not null references app_public.users,
  requested_at  timestamptz not null default now(),
  decided_by    uuid references app_public.users,
  decided_at    timestamptz,
  decision_note text check (length(decision_note) <= 500),
  entry_id      uuid unique references ledger.entries,
  constraint balance_adjustments_four_eyes check (status <> 'approved' or decided_by <> requested_by),
  constraint balance_adjustments_decided check ((status = 'pending') = (decided_by is null and decided_at is null)),
  constraint balance_adjustments_posted_iff_approved check ((status = 'approved') = (entry_id is not null))
);
create index if not exists balance_adjustments_pending_idx on app_public.balance_adjustments (requested_at) where status = 'pending';
create index if not exists balance_adjustments_wallet_idx on app_public.balance_adjustments (wallet_id);

-- Rate-limit counters (fixed windows). Unlogged: a crash only resets the counters.
create unlogged table if not exists app_private.rate_limit_counters (
  bucket       text not null,
  window_start timestamptz not null,
  hits         int not null default 0,
  primary key (bucket, window_start)
);

--! Included admin/audit_log.sql
-- Who is an admin, and the append-only log of everything admins do.
-- Every admin function checks the caller here, in SQL: the token's role claim
-- must say app_admin AND the live session's user must have role 'admin' now
-- (a demoted admin's unexpired token stops working at once). EXECUTE on the
-- admin functions is granted to app_admin only, so app_user cannot even call them.

create or replace function app_private.current_admin_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  select u.id
    from app_public.users u
   where u.id = app_public.current_user_id()
     and u.role = 'admin'
     and u.erased_at is null
     and current_setting('request.jwt.claims.role', true) = 'app_admin';
$$;
comment on function app_private.current_admin_id() is
  'The calling admin''s user id, or null: needs the app_admin role claim and users.role = admin for the live session.';

create or replace function app_private.assert_admin()
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.current_admin_id();
begin
  if v_admin is null then
    raise exception 'Only administrators may do this' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return v_admin;
end;
$$;

-- A reason is required for every admin action that changes something.
create or replace function app_private.assert_reason(p_reason text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'Give a reason of 1 to 500 characters' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  return btrim(p_reason);
end;
$$;

-- The client address the API passed as request.client_ip (Express req.ip), or null.
create or replace function app_private.request_client_ip()
returns inet
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return nullif(current_setting('request.client_ip', true), '')::inet;
exception when invalid_text_representation then
  return null;
end;
$$;

-- Appends one line to the admin log: who (the caller, or the CLI), what, on
-- what, from which address and request.
create or replace function app_private.log_admin_action(
  p_action text, p_target_type text, p_target_id text, p_details jsonb default '{}'
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_actor uuid := app_private.current_admin_id();
  v_id bigint;
begin
  insert into app_private.admin_actions (actor_id, actor, action, target_type, target_id, details, client_ip, request_id)
  values (v_actor, case when v_actor is null then 'cli' else 'admin' end, p_action, p_target_type, p_target_id,
          coalesce(p_details, '{}'), app_private.request_client_ip(),
          left(nullif(current_setting('pgwallet.request_id', true), ''), 64))
  returning id into v_id;
  return v_id;
end;
$$;

-- Append-only: no role, the owner included, updates, deletes or truncates the log.
create or replace function app_private.tg_admin_actions_append_only()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception 'The admin log is append-only: % is not allowed', lower(tg_op)
    using errcode = 'PW310'; -- AUDIT_LOG_IMMUTABLE
end;
$$;
create or replace trigger _000_append_only before update or delete on app_private.admin_actions
  for each row execute function app_private.tg_admin_actions_append_only();
create or replace trigger _000_append_only_truncate before truncate on app_private.admin_actions
  for each statement execute function app_private.tg_admin_actions_append_only();

-- For auditors: the log with the admin's (current) email.
create or replace view audit.admin_actions as
  select a.id, a.occurred_at, a.actor, a.actor_id, u.email as actor_email, a.action, a.target_type, a.target_id,
         a.details, a.client_ip, a.request_id
    from app_private.admin_actions a
    left join app_public.users u on u.id = a.actor_id;

revoke all on app_private.admin_actions from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on audit.admin_actions from public;
grant select on audit.admin_actions to app_auditor;

revoke all on function app_private.current_admin_id() from public;
revoke all on function app_private.assert_admin() from public;
revoke all on function app_private.assert_reason(text) from public;
revoke all on function app_private.request_client_ip() from public;
revoke all on function app_private.log_admin_action(text, text, text, jsonb) from public;
revoke all on function app_private.tg_admin_actions_append_only() from public;
-- Policies on admin-visible rows call current_admin_id() as the querying role.
grant execute on function app_private.current_admin_id() to app_admin;
--! EndIncluded admin/audit_log.sql
--! Included admin/users.sql
-- Admins list users and wallets, and change roles. A user never raises their
-- own role: app_user may update only full_name (sql/auth/users_policies.sql),
-- and the role changes only through admin_set_user_role (an existing admin,
-- never on themselves) or app_private.grant_admin (npm run admin:grant, the
-- owner connection).

-- Admins see every user (allUsers); everyone else still sees only themselves.
drop policy if exists select_all_for_admins on app_public.users;
create policy select_all_for_admins on app_public.users
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

-- Every wallet with its owner, for admins (freeze/unfreeze, adjustments).
create or replace view app_public.admin_wallets with (security_barrier) as
  select a.id,
         a.owner_id,
         u.email as owner_email,
         u.full_name as owner_name,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
    join app_public.users u on u.id = a.owner_id
   where a.kind = 'user_wallet'
     and (select app_private.current_admin_id()) is not null;
comment on view app_public.admin_wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nAdmins only: every user wallet with its owner. Amounts in minor units.';
comment on column app_public.admin_wallets.id is E'@notNull';
comment on column app_public.admin_wallets.owner_id is E'@notNull';
comment on column app_public.admin_wallets.owner_email is E'@notNull';
comment on column app_public.admin_wallets.owner_name is E'@notNull';
comment on column app_public.admin_wallets.currency is E'@notNull';
comment on column app_public.admin_wallets.balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.frozen is E'@notNull';
comment on column app_public.admin_wallets.created_at is E'@notNull\n@behavior -filterBy';

-- Makes a user an admin or a user again. Their sessions end, so the next
-- sign-in carries the new role (and a demoted admin's token dies at once anyway).
create or replace function app_public.admin_set_user_role(user_id uuid, role app_public.user_role, reason text)
returns app_public.users
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_set_user_role.reason);
  v_user app_public.users;
  v_old app_public.user_role;
begin
  if admin_set_user_role.user_id = v_admin then
    raise exception 'Admins cannot change their own role; ask another admin' using errcode = 'PW309'; -- ADMIN_SELF_ACTION
  end if;
  select u.role into v_old from app_public.users u where u.id = admin_set_user_role.user_id and u.erased_at is null for update;
  if not found or admin_set_user_role.role is null then
    raise exception 'No such user' using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  update app_public.users u set role = admin_set_user_role.role where u.id = admin_set_user_role.user_id returning u.* into v_user;
  update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
   where s.user_id = admin_set_user_role.user_id and s.revoked_at is null;
  perform app_private.log_admin_action('set_user_role', 'user', v_user.id::text,
    jsonb_build_object('from', v_old, 'to', v_user.role, 'reason', v_reason));
  return v_user;
end;
$$;
comment on function app_public.admin_set_user_role(uuid, app_public.user_role, text) is
  'Admins only: make a user an admin or a plain user (never yourself). Their sessions end; logged.';

-- npm run admin:grant -- <email>: the way to create the first admin. Runs on
-- the owner connection (no API role may execute it) and is logged as 'cli'.
create or replace function app_private.grant_admin(p_email text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.email = btrim(p_email)::citext and u.erased_at is null for update;
  if v_user.id is null then
    raise exception 'No user has the email address %', p_email using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_user.role <> 'admin' then
    update app_public.users set role = 'admin' where id = v_user.id;
    update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = v_user.id and s.revoked_at is null;
    perform app_private.log_admin_action('grant_admin', 'user', v_user.id::text, jsonb_build_object('from', v_user.role, 'to', 'admin'));
  end if;
  return v_user.id;
end;
$$;

revoke all on app_public.admin_wallets from public, app_anonymous, app_user;
grant select on app_public.admin_wallets to app_admin;
revoke all on function app_public.admin_set_user_role(uuid, app_public.user_role, text) from public;
grant execute on function app_public.admin_set_user_role(uuid, app_public.user_role, text) to app_admin;
revoke all on function app_private.grant_admin(text) from public;
--! EndIncluded admin/users.sql
--! Included admin/operations.sql
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
--! EndIncluded admin/operations.sql
--! Included admin/adjustments.sql
-- Manual balance adjustments, maker-checker: one admin requests, a different
-- admin approves (which posts the entry through the ledger's functions,
-- between the wallet and the currency's system adjustments account) or
-- rejects. Both decisions are recorded on the row and in the admin log.

alter table app_public.balance_adjustments enable row level security;
drop policy if exists select_for_admins on app_public.balance_adjustments;
create policy select_for_admins on app_public.balance_adjustments
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

create or replace function app_public.admin_request_adjustment(wallet_id uuid, amount bigint, reason text)
returns app_public.balance_adjustments
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_request_adjustment.reason);
  v_currency char(3);
  v_row app_public.balance_adjustments;
begin
  if admin_request_adjustment.amount is null or admin_request_adjustment.amount = 0
     or abs(admin_request_adjustment.amount) > 1000000000000000 then
    raise exception 'The amount must be a non-zero whole number of minor units (negative debits the wallet)'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  select a.currency into v_currency from ledger.accounts a
   where a.id = admin_request_adjustment.wallet_id and a.kind = 'user_wallet';
  if v_currency is null then
    raise exception 'No such wallet' using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  insert into app_public.balance_adjustments (wallet_id, amount, currency, reason, requested_by)
  values (admin_request_adjustment.wallet_id, admin_request_adjustment.amount, v_currency, v_reason, v_admin)
  returning * into v_row;
  perform app_private.log_admin_action('request_adjustment', 'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency, 'reason', v_reason));
  return v_row;
end;
$$;
comment on function app_public.admin_request_adjustment(uuid, bigint, text) is
  'Admins only: ask for a manual balance adjustment (positive credits, negative debits the wallet). Another admin must approve it. Logged.';

create or replace function app_public.admin_decide_adjustment(adjustment_id uuid, approve boolean, note text)
returns app_public.balance_adjustments
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_decide_adjustment.note);
  v_row app_public.balance_adjustments;
  v_owner uuid;
  v_system uuid;
  v_entry uuid;
begin
  select b.* into v_row from app_public.balance_adjustments b where b.id = admin_decide_adjustment.adjustment_id for update;
  if v_row.id is null then
    raise exception 'No such balance adjustment' using errcode = 'PW302'; -- ADJUSTMENT_NOT_FOUND
  end if;
  if v_row.status <> 'pending' then
    raise exception 'This adjustment was already %', v_row.status using errcode = 'PW303'; -- ADJUSTMENT_NOT_PENDING
  end if;

  if admin_decide_adjustment.approve then
    select a.owner_id into v_owner from ledger.accounts a where a.id = v_row.wallet_id;
    if v_row.requested_by = v_admin then
      raise exception 'Another admin must approve an adjustment you requested' using errcode = 'PW301'; -- ADMIN_SELF_APPROVAL
    end if;
    if v_owner = v_admin then
      raise exception 'Another admin must approve an adjustment to your own wallet' using errcode = 'PW301'; -- ADMIN_SELF_APPROVAL
    end if;
    v_system := ledger.system_account('adjustments', v_row.currency);
    v_entry := case when v_row.amount > 0
      then ledger.move('adjustment', v_system, v_row.wallet_id, v_row.amount, left('Adjustment: ' || v_row.reason, 140),
                       jsonb_build_object('adjustment_id', v_row.id, 'requested_by', v_row.requested_by, 'approved_by', v_admin))
      else ledger.move('adjustment', v_row.wallet_id, v_system, -v_row.amount, left('Adjustment: ' || v_row.reason, 140),
                       jsonb_build_object('adjustment_id', v_row.id, 'requested_by', v_row.requested_by, 'approved_by', v_admin))
    end;
    update app_public.balance_adjustments b
       set status = 'approved', decided_by = v_admin, decided_at = now(), decision_note = v_note, entry_id = v_entry
     where b.id = v_row.id
    returning * into v_row;
  elsif not admin_decide_adjustment.approve then
    update app_public.balance_adjustments b
       set status = 'rejected', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where b.id = v_row.id
    returning * into v_row;
  else
    raise exception 'Say whether to approve' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  perform app_private.log_admin_action(case when v_row.status = 'approved' then 'approve_adjustment' else 'reject_adjustment' end,
    'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency,
                       'requested_by', v_row.requested_by, 'entry_id', v_row.entry_id, 'note', v_note));
  return v_row;
end;
$$;
comment on function app_public.admin_decide_adjustment(uuid, boolean, text) is
  'Admins only: approve (posts the entry) or reject a pending adjustment. The requester cannot approve their own request, nor anyone an adjustment to their own wallet. Logged.';

comment on table app_public.balance_adjustments is
  E'@behavior -insert -update -delete\nAdmins only: manual balance adjustments, requested by one admin and approved or rejected by another.';
comment on column app_public.balance_adjustments.amount is E'@behavior -filterBy -orderBy\nMinor units: positive credits the wallet, negative debits it.';
comment on constraint balance_adjustments_entry_id_key on app_public.balance_adjustments is '@behavior -single';

revoke all on app_public.balance_adjustments from public, app_anonymous, app_user, app_auditor, authenticator;
grant select on app_public.balance_adjustments to app_admin;
revoke all on function app_public.admin_request_adjustment(uuid, bigint, text) from public;
revoke all on function app_public.admin_decide_adjustment(uuid, boolean, text) from public;
grant execute on function app_public.admin_request_adjustment(uuid, bigint, text) to app_admin;
grant execute on function app_public.admin_decide_adjustment(uuid, boolean, text) to app_admin;
--! EndIncluded admin/adjustments.sql
--! Included privacy/erasure.sql
-- GDPR erasure. The ledger keeps every entry and balance; what identifies the
-- person is removed or replaced: email (an unguessable pseudonym, so sign-in
-- and transfers by email find nobody), name, password hash, sessions and
-- refresh tokens, sign-in attempts, bank account details (the encrypted
-- number is deleted), and the email and name inside stored Revio deliveries.
-- Wallets are frozen. The person may erase themselves only with nothing left:
-- every wallet at zero and no deposit or withdrawal still open. An admin may
-- erase anyone (the balance then stays in the frozen wallet).

create or replace function app_private.erase_user(p_user_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.id = p_user_id for update;
  if v_user.id is null then
    raise exception 'No such user' using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_user.erased_at is not null then
    raise exception 'This account was already erased' using errcode = 'PW312'; -- USER_ERASED
  end if;

  -- Stored Revio deliveries quote the email and name the purchase was made with.
  update app_private.revio_deliveries d
     set body = case when length(v_user.full_name) >= 3
                     then replace(replace(d.body, v_user.email::text, '[erased]'), v_user.full_name, '[erased]')
                     else replace(d.body, v_user.email::text, '[erased]') end
   where d.deposit_id in (select id from app_public.deposits where user_id = p_user_id)
      or d.withdrawal_id in (select id from app_public.withdrawals where user_id = p_user_id);

  delete from app_private.login_attempts a where a.email = v_user.email;
  delete from app_private.user_secrets s where s.user_id = p_user_id;
  update app_private.sessions s set revoked_at = coalesce(s.revoked_at, now()), revoked_reason = coalesce(s.revoked_reason, 'admin')
   where s.user_id = p_user_id;
  delete from app_private.refresh_tokens t using app_private.sessions s where t.session_id = s.id and s.user_id = p_user_id;

  delete from app_private.bank_account_numbers n using app_public.bank_accounts b
   where n.bank_account_id = b.id and b.user_id = p_user_id;
  update app_public.bank_accounts b
     set account_holder = 'Erased', bank_name = 'Erased', branch_code = '000000', account_number_last4 = '0000'
   where b.user_id = p_user_id;
  update app_public.deposits d set checkout_url = null where d.user_id = p_user_id;

  update ledger.accounts a set frozen = true where a.kind = 'user_wallet' and a.owner_id = p_user_id and not a.frozen;

  update app_public.users u
     set email = 'erased-' || encode(gen_random_bytes(12), 'hex') || '@erased.invalid',
         full_name = 'Erased user',
         role = 'user',
         erased_at = now()
   where u.id = p_user_id;
end;
$$;

-- The GraphQL mutation deleteMyAccount.
create or replace function app_public.delete_my_account()
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to delete your account' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  -- Lock the wallets so no money arrives between the check and the erasure.
  perform from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = v_caller order by a.id for update;
  if exists (select from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = v_caller and (a.balance <> 0 or a.held <> 0))
     or exists (select from app_public.deposits d where d.user_id = v_caller and d.status in ('pending', 'awaiting_payment'))
     or exists (select from app_public.withdrawals w where w.user_id = v_caller and w.status in ('requested', 'submitted')) then
    raise exception 'Withdraw or spend your whole balance, and wait for open deposits and withdrawals, before deleting your account'
      using errcode = 'PW311'; -- ACCOUNT_NOT_EMPTY
  end if;
  perform app_private.erase_user(v_caller);
  return true;
end;
$$;
comment on function app_public.delete_my_account() is
  'Erase your personal data (GDPR) and end every session. Only when all your wallets are at zero and nothing is in flight; the ledger keeps its entries.';

create or replace function app_public.admin_erase_user(user_id uuid, reason text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_erase_user.reason);
  v_balances jsonb;
begin
  if admin_erase_user.user_id = v_admin then
    raise exception 'Admins cannot erase themselves here; use deleteMyAccount' using errcode = 'PW309'; -- ADMIN_SELF_ACTION
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('wallet_id', a.id, 'currency', a.currency, 'balance', a.balance, 'held', a.held)), '[]')
    into v_balances
    from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = admin_erase_user.user_id;
  perform app_private.erase_user(admin_erase_user.user_id);
  perform app_private.log_admin_action('erase_user', 'user', admin_erase_user.user_id::text,
    jsonb_build_object('wallets', v_balances, 'reason', v_reason));
  return true;
end;
$$;
comment on function app_public.admin_erase_user(uuid, text) is
  'Admins only: erase a person''s personal data even with money left (their wallets stay frozen with it). Logged.';

revoke all on function app_private.erase_user(uuid) from public;
revoke all on function app_public.delete_my_account() from public;
revoke all on function app_public.admin_erase_user(uuid, text) from public;
grant execute on function app_public.delete_my_account() to app_user;
grant execute on function app_public.admin_erase_user(uuid, text) to app_admin;
--! EndIncluded privacy/erasure.sql
--! Included abuse/rate_limit.sql
-- Rate limits kept in PostgreSQL (no extra server). The API calls
-- app_private.rate_limit_hit once per GraphQL request, as the authenticator,
-- with the buckets the request counts against (per IP, per user, and the
-- stricter ones for sign-in and money mutations; src/http/rate-limit.ts) and
-- their limits. Fixed windows: each bucket counts hits in the current window
-- of p_window_seconds; over the limit, the answer is the seconds until the
-- window ends (Retry-After). Hits over the limit still count.

create or replace function app_private.rate_limit_hit(p_buckets text[], p_limits int[], p_window_seconds int)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_window_seconds int := greatest(coalesce(p_window_seconds, 60), 1);
  v_window timestamptz := to_timestamp(floor(extract(epoch from clock_timestamp()) / v_window_seconds) * v_window_seconds);
  v_over boolean;
begin
  -- Sorted and distinct: concurrent requests lock counter rows in one order.
  with wanted as (
    select distinct on (b.bucket) b.bucket, b.lim
      from unnest(p_buckets, p_limits) as b(bucket, lim)
     where b.bucket is not null and b.lim > 0
     order by b.bucket, b.lim
  ), hit as (
    insert into app_private.rate_limit_counters as c (bucket, window_start, hits)
    select w.bucket, v_window, 1 from wanted w order by w.bucket
    on conflict (bucket, window_start) do update set hits = c.hits + 1
    returning c.bucket, c.hits
  )
  select coalesce(bool_or(hit.hits > wanted.lim), false) into v_over
    from hit join wanted using (bucket);

  -- Now and then, forget windows that have ended.
  if random() < 0.002 then
    delete from app_private.rate_limit_counters c where c.window_start < v_window;
  end if;

  if v_over then
    return greatest(1, ceil(extract(epoch from (v_window + make_interval(secs => v_window_seconds) - clock_timestamp())))::int);
  end if;
  return 0;
end;
$$;
comment on function app_private.rate_limit_hit(text[], int[], int) is
  'Counts one hit against each bucket (limit <= 0: not counted); returns 0, or the seconds to wait when any bucket is over its limit.';

revoke all on app_private.rate_limit_counters from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function app_private.rate_limit_hit(text[], int[], int) from public;
grant execute on function app_private.rate_limit_hit(text[], int[], int) to authenticator;
--! EndIncluded abuse/rate_limit.sql
--! Included ledger/wallet_api.sql
-- The wallet API in app_public. Wallets and their history are views over the
-- ledger that show the signed-in user's own rows only: the filter is part of
-- each view (security_barrier keeps a caller's predicates from running
-- before it), and the ledger tables themselves stay out of reach.

create or replace view app_public.wallets with (security_barrier) as
  select a.id,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nYour wallets: one per currency. Amounts are in minor units (cents).';
comment on column app_public.wallets.id is E'@notNull';
comment on column app_public.wallets.currency is E'@notNull\nISO 4217 code, e.g. ZAR.';
comment on column app_public.wallets.balance is E'@notNull\n@behavior -filterBy -orderBy\nEverything in the wallet, in minor units, including held money.';
comment on column app_public.wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy\nWhat can be spent now: balance minus held.';
comment on column app_public.wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy\nReserved by pending withdrawals and other holds.';
comment on column app_public.wallets.frozen is E'@notNull\n@behavior -filterBy -orderBy\nA frozen wallet can receive money but not send it.';
comment on column app_public.wallets.created_at is E'@notNull\n@behavior -filterBy';

-- One row per posting to one of your wallets, with the other side of the
-- entry named for display. Wallet.transactions pages through it newest first.
create or replace view app_public.wallet_transactions with (security_barrier) as
  select p.account_id as wallet_id,
         p.sequence,
         p.entry_id,
         p.amount,
         p.currency,
         e.kind,
         e.memo,
         cp.name as counterparty_name,
         p.balance_after,
         p.created_at as occurred_at
    from ledger.postings p
    join ledger.accounts a on a.id = p.account_id
    join ledger.entries e on e.id = p.entry_id
    left join lateral (
      -- The largest leg on the other side of the entry: a person, or what a
      -- system account stands for.
      select coalesce(u.full_name, case oa.kind::text when 'revio_clearing' then 'Revio'
                                                      when 'withdrawals_in_flight' then 'Bank withdrawal'
                                                      when 'fees' then 'pgwallet fees'
                                                      when 'adjustments' then 'pgwallet adjustment' end) as name
        from ledger.postings o
        join ledger.accounts oa on oa.id = o.account_id
        left join app_public.users u on u.id = oa.owner_id
       where o.entry_id = p.entry_id and o.account_id <> p.account_id and sign(o.amount) <> sign(p.amount)
       order by abs(o.amount) desc, o.id
       limit 1
    ) cp on true
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallet_transactions is
  E'@primaryKey wallet_id,sequence\n'
  '@foreignKey (wallet_id) references app_public.wallets (id)|@fieldName wallet|@foreignFieldName transactions\n'
  '@behavior -insert -update -delete -query:resource:list -query:resource:connection -query:resource:single\n'
  'A movement of money in one of your wallets.';
comment on column app_public.wallet_transactions.wallet_id is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.sequence is E'@notNull\n@behavior -filterBy -orderBy\nPosition in the wallet''s history: 1 for the first movement.';
comment on column app_public.wallet_transactions.entry_id is E'@notNull\n@behavior -filterBy -orderBy\nThe journal entry this movement belongs to (a transfer''s id).';
comment on column app_public.wallet_transactions.amount is E'@notNull\n@behavior -filterBy -orderBy\nSigned minor units: positive arrived, negative left.';
comment on column app_public.wallet_transactions.currency is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.kind is E'@notNull\n@behavior -orderBy\nWhat kind of movement this is.';
comment on column app_public.wallet_transactions.memo is E'@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.counterparty_name is E'@behavior -filterBy -orderBy\nWho is on the other side: a person''s name, or Revio, Bank withdrawal, pgwallet fees, pgwallet adjustment.';
comment on column app_public.wallet_transactions.balance_after is E'@notNull\n@behavior -filterBy -orderBy\nThe wallet balance right after this movement.';
comment on column app_public.wallet_transactions.occurred_at is E'@notNull\n@behavior -filterBy -orderBy\nWhen the movement was recorded.';

-- The GraphQL mutation `openWallet`: returns your wallet in that currency,
-- opening it if you have none yet (so calling it twice is harmless).
create or replace function app_public.open_wallet(currency text)
returns app_public.wallets
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_id uuid;
  v_wallet app_public.wallets;
begin
  if v_caller is null then
    raise exception 'Sign in to open a wallet' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  v_id := ledger.open_wallet(v_caller, upper(btrim(open_wallet.currency)));
  select w.* into v_wallet from app_public.wallets w where w.id = v_id;
  return v_wallet;
end;
$$;
comment on function app_public.open_wallet(text) is
  'Opens a wallet in an ISO 4217 currency (e.g. USD), or returns the one you already have. Unsupported codes fail with CURRENCY_INVALID.';

-- Filtering on kind casts to ledger.entry_kind, which needs USAGE on the
-- schema. USAGE alone grants nothing on the ledger's tables or functions.
grant usage on schema ledger to app_user;
revoke all on app_public.wallets, app_public.wallet_transactions from public, app_anonymous, app_user;
grant select on app_public.wallets, app_public.wallet_transactions to app_user;
revoke all on function app_public.open_wallet(text) from public;
grant execute on function app_public.open_wallet(text) to app_user;
--! EndIncluded ledger/wallet_api.sql

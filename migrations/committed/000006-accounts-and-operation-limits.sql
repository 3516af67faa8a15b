--! Previous: sha1:19a76a7800042f01b921e07858dcd1ace4a76bf3
--! Hash: sha1:5063ddabc5b61bbe6a20b3c5ac51d36564f7ef8e
--! Message: accounts and operation limits

-- Enter migration here
-- ==== sec-accounts ====
-- Issue 9 §2 and §4: per-operation limits (weighted rate-limit hits), email
-- verification, password change and reset, sign out everywhere, absolute
-- session lifetime, and the client address / user agent of sign-ins and money
-- requests for fraud review (docs/security.md).

-- Email verification. Accounts that existed before verification was introduced
-- are treated as verified (they were trusted until now); new ones start unverified.
do $$
begin
  if not exists (select from information_schema.columns
                  where table_schema = 'app_public' and table_name = 'users' and column_name = 'email_verified_at') then
    alter table app_public.users add column email_verified_at timestamptz;
    update app_public.users set email_verified_at = created_at;
  end if;
end
$$;
comment on column app_public.users.email_verified_at is
  'When the email address was proven (verification link or password reset); null: unverified, so the account cannot receive transfers or withdraw.';

-- Single-use tokens sent by email; only their SHA-256 is stored.
create table if not exists app_private.email_tokens (
  token_hash bytea primary key,
  user_id    uuid not null references app_public.users on delete cascade,
  purpose    text not null check (purpose in ('verify_email', 'password_reset')),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at    timestamptz
);
create index if not exists email_tokens_user_purpose_idx on app_private.email_tokens (user_id, purpose, created_at desc);

-- Emails to send: written in the transaction that decides to send, delivered
-- by the send_email job. params (which can hold a clear token) is emptied once sent.
create table if not exists app_private.email_outbox (
  id         bigint generated always as identity primary key,
  user_id    uuid references app_public.users on delete cascade,
  to_address citext not null,
  template   text not null check (template in ('verify_email', 'password_reset', 'password_changed')),
  params     jsonb,
  created_at timestamptz not null default now(),
  sent_at    timestamptz
);
create index if not exists email_outbox_user_idx on app_private.email_outbox (user_id);

-- Sessions can now also end by a password change or reset, by "sign out
-- everywhere", or by reaching their absolute lifetime.
alter table app_private.sessions drop constraint if exists sessions_revoked_reason_check;
alter table app_private.sessions add constraint sessions_revoked_reason_check
  check (revoked_reason in ('logout', 'refresh_token_reuse', 'admin', 'password_change', 'password_reset', 'sign_out_everywhere', 'expired'));

-- Where sign-in attempts and money requests came from (admins and auditors only).
alter table app_private.login_attempts add column if not exists client_ip inet;
alter table app_private.login_attempts add column if not exists user_agent text;

create table if not exists app_private.client_activity (
  id          bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  action      text not null check (action in ('deposit_requested', 'withdrawal_requested', 'bank_account_added',
                                              'bank_account_changed', 'bank_account_removed')),
  user_id     uuid,
  subject_id  uuid,
  client_ip   inet,
  user_agent  text,
  request_id  text
);
create index if not exists client_activity_user_idx on app_private.client_activity (user_id, occurred_at desc);

--! Included abuse/operation_limits.sql
-- Weighted rate-limit hits (issue 9 §2): a request counts once against its
-- per-address and per-user buckets, but every sign-in or money field it
-- carries counts against the sign-in or money bucket, so one document with
-- five transfers uses five of the money allowance. Same fixed windows and
-- counters as app_private.rate_limit_hit (rate_limit.sql), which remains for
-- callers that count one hit per bucket.

create or replace function app_private.rate_limit_hit(p_buckets text[], p_limits int[], p_window_seconds int, p_hits int[])
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
  with given as (
    select b.bucket, b.lim, greatest(coalesce(b.hits, 1), 1) as hits
      from unnest(p_buckets, p_limits, p_hits) as b(bucket, lim, hits)
     where b.bucket is not null and b.lim > 0
  ), wanted as (
    select g.bucket, min(g.lim) as lim, sum(g.hits)::int as hits from given g group by g.bucket
  ), hit as (
    insert into app_private.rate_limit_counters as c (bucket, window_start, hits)
    select w.bucket, v_window, w.hits from wanted w order by w.bucket
    on conflict (bucket, window_start) do update set hits = c.hits + excluded.hits
    returning c.bucket, c.hits
  )
  select coalesce(bool_or(hit.hits > wanted.lim), false) into v_over
    from hit join wanted using (bucket);

  if random() < 0.002 then
    delete from app_private.rate_limit_counters c where c.window_start < v_window;
  end if;

  if v_over then
    return greatest(1, ceil(extract(epoch from (v_window + make_interval(secs => v_window_seconds) - clock_timestamp())))::int);
  end if;
  return 0;
end;
$$;
comment on function app_private.rate_limit_hit(text[], int[], int, int[]) is
  'Counts p_hits[i] hits against bucket i (limit <= 0: not counted); returns 0, or the seconds to wait when any bucket is over its limit.';

revoke all on function app_private.rate_limit_hit(text[], int[], int, int[]) from public;
grant execute on function app_private.rate_limit_hit(text[], int[], int, int[]) to authenticator;
--! EndIncluded abuse/operation_limits.sql
--! Included accounts/email.sql
-- Email verification and the email outbox (issue 9 §4, docs/security.md).
-- A message is a row in app_private.email_outbox plus a send_email job queued
-- in the same transaction, so an email goes out exactly when the change that
-- asked for it commits (src/worker/tasks/send-email.ts delivers it). Tokens
-- sent by email are 256 random bits; only their SHA-256 is stored.

create or replace function app_private.email_token_hash(p_token text)
returns bytea
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
$$;

-- Mints a single-use token for one purpose and returns it in clear, once. A new
-- token retires the user's unused ones of the same purpose.
create or replace function app_private.issue_email_token(p_user_id uuid, p_purpose text, p_ttl interval)
returns text
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_token text := translate(encode(gen_random_bytes(32), 'base64'), '+/=', '-_');
begin
  update app_private.email_tokens t set used_at = now()
   where t.user_id = p_user_id and t.purpose = p_purpose and t.used_at is null;
  insert into app_private.email_tokens (token_hash, user_id, purpose, expires_at)
  values (app_private.email_token_hash(v_token), p_user_id, p_purpose, now() + p_ttl);
  return v_token;
end;
$$;

-- Consumes a live token of p_purpose; returns its user, or null when the token
-- is unknown, used or expired (the caller raises its own code).
create or replace function app_private.use_email_token(p_token text, p_purpose text)
returns uuid
language sql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
  update app_private.email_tokens t set used_at = now()
   where t.token_hash = app_private.email_token_hash(p_token)
     and t.purpose = p_purpose and t.used_at is null and t.expires_at > now()
  returning t.user_id;
$$;

-- Writes one email to the outbox and queues its delivery in this transaction.
create or replace function app_private.queue_email(p_user_id uuid, p_to citext, p_template text, p_params jsonb)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_id bigint;
begin
  insert into app_private.email_outbox (user_id, to_address, template, params)
  values (p_user_id, p_to, p_template, coalesce(p_params, '{}'))
  returning id into v_id;
  perform graphile_worker.add_job('send_email', json_build_object('outboxId', v_id),
                                  job_key := 'email:' || v_id, max_attempts := 10);
  return v_id;
end;
$$;

-- Sends (again) the verification link to an unverified user; valid 3 days.
create or replace function app_private.send_verification_email(p_user app_public.users)
returns void
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.queue_email(p_user.id, p_user.email, 'verify_email',
    jsonb_build_object('fullName', p_user.full_name,
                       'token', app_private.issue_email_token(p_user.id, 'verify_email', interval '3 days')));
end;
$$;

-- The mutation verifyEmail: anyone holding the emailed token may use it once.
create or replace function app_public.verify_email(token text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user_id uuid := app_private.use_email_token(token, 'verify_email');
begin
  if v_user_id is null then
    raise exception 'This verification link is invalid, was already used or has expired' using errcode = 'PW005'; -- EMAIL_TOKEN_INVALID
  end if;
  update app_public.users u set email_verified_at = coalesce(u.email_verified_at, now()) where u.id = v_user_id;
  return true;
end;
$$;
comment on function app_public.verify_email(text) is
  'Proves the email address with the token from the verification email (single use, valid 3 days).';

-- The mutation resendVerificationEmail: false when there is nothing to verify,
-- or when a link was sent less than a minute ago (no mail bombing).
create or replace function app_public.resend_verification_email()
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.id = app_public.current_user_id();
  if v_user.id is null then
    raise exception 'Sign in to verify your email address' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  if v_user.email_verified_at is not null or exists (
       select from app_private.email_tokens t
        where t.user_id = v_user.id and t.purpose = 'verify_email' and t.created_at > now() - interval '1 minute') then
    return false;
  end if;
  perform app_private.send_verification_email(v_user);
  return true;
end;
$$;
comment on function app_public.resend_verification_email() is
  'Sends a new verification link to your address (at most one a minute); false when already verified or just sent.';

-- For the send_email task: the message to deliver, or nothing when it was already sent.
create or replace function app_private.email_to_send(p_outbox_id bigint)
returns table (to_address text, template text, params jsonb)
language sql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  select o.to_address::text, o.template, o.params
    from app_private.email_outbox o
   where o.id = p_outbox_id and o.sent_at is null;
$$;

-- After delivery: the clear token is forgotten; the row stays as a record.
create or replace function app_private.mark_email_sent(p_outbox_id bigint)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  update app_private.email_outbox o set sent_at = now(), params = null
   where o.id = p_outbox_id and o.sent_at is null;
$$;

-- When an address is replaced (erasure rewrites it), the old address's mail
-- and tokens go with it.
create or replace function app_private.tg_users_forget_email()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  delete from app_private.email_outbox o where o.user_id = new.id;
  delete from app_private.email_tokens t where t.user_id = new.id;
  return null;
end;
$$;
create or replace trigger _900_forget_email after update of email on app_public.users
  for each row when (old.email is distinct from new.email) execute function app_private.tg_users_forget_email();

revoke all on app_private.email_tokens, app_private.email_outbox from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function app_private.email_token_hash(text) from public;
revoke all on function app_private.issue_email_token(uuid, text, interval) from public;
revoke all on function app_private.use_email_token(text, text) from public;
revoke all on function app_private.queue_email(uuid, citext, text, jsonb) from public;
revoke all on function app_private.send_verification_email(app_public.users) from public;
revoke all on function app_public.verify_email(text) from public;
revoke all on function app_public.resend_verification_email() from public;
revoke all on function app_private.email_to_send(bigint) from public;
revoke all on function app_private.mark_email_sent(bigint) from public;
revoke all on function app_private.tg_users_forget_email() from public;
grant execute on function app_public.verify_email(text) to app_anonymous;
grant execute on function app_public.resend_verification_email() to app_user;
--! EndIncluded accounts/email.sql
--! Included accounts/passwords.sql
-- Password change, password reset by email, and sign out everywhere (issue 9
-- §4, docs/security.md). Every way of setting a new password ends the other
-- sessions, so whoever knew the old password is signed out.

-- The password rule of registration (bcrypt reads at most 72 bytes).
create or replace function app_private.assert_valid_password(p_password text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_password is null or length(p_password) < 10 or octet_length(p_password) > 72 then
    raise exception 'Passwords must be 10 to 72 bytes long' using errcode = 'PW002'; -- PASSWORD_WEAK
  end if;
end;
$$;

create or replace function app_private.set_password(p_user_id uuid, p_password text)
returns void
language sql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
  insert into app_private.user_secrets (user_id, password_hash)
  values (p_user_id, crypt(p_password, gen_salt('bf', 10)))
  on conflict (user_id) do update set password_hash = excluded.password_hash;
$$;

-- Ends the user's live sessions except p_keep (null: all of them); returns how many.
create or replace function app_private.end_sessions(p_user_id uuid, p_reason text, p_keep uuid default null)
returns int
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_count int;
begin
  update app_private.sessions s set revoked_at = now(), revoked_reason = p_reason
   where s.user_id = p_user_id and s.revoked_at is null and s.id is distinct from p_keep;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

-- changePassword (src/http/graphql/auth-plugin.ts). Like login, a wrong current
-- password is *returned* ('invalid', recorded as a failed sign-in of the
-- account) rather than raised, so it counts towards the lockout: a stolen
-- access token cannot be used to guess the password.
create or replace function app_private.change_password(p_current_password text, p_new_password text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
  v_hash text;
  v_locked_until timestamptz;
begin
  select u.* into v_user from app_public.users u where u.id = app_public.current_user_id();
  if v_user.id is null then
    raise exception 'Sign in to change your password' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  perform app_private.assert_valid_password(p_new_password);
  perform pg_advisory_xact_lock(hashtextextended('login:' || lower(v_user.email::text), 0));
  v_locked_until := app_private.login_locked_until(v_user.email);
  if v_locked_until is not null then
    return row('locked', null, null, null, null, null, null, v_locked_until)::app_private.auth_result;
  end if;
  select s.password_hash into v_hash from app_private.user_secrets s where s.user_id = v_user.id;
  if v_hash is null or crypt(coalesce(p_current_password, ''), v_hash) is distinct from v_hash then
    insert into app_private.login_attempts (email, succeeded, client_ip, user_agent)
    values (v_user.email, false, app_private.request_client_ip(), app_private.request_user_agent());
    return row('invalid', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  perform app_private.set_password(v_user.id, p_new_password);
  perform app_private.end_sessions(v_user.id, 'password_change', app_public.current_session_id());
  perform app_private.queue_email(v_user.id, v_user.email, 'password_changed', jsonb_build_object('fullName', v_user.full_name));
  return row('ok', v_user.id, v_user.email::text, v_user.full_name, v_user.role::text,
             app_public.current_session_id(), null, null)::app_private.auth_result;
end;
$$;

-- requestPasswordReset: always true, whether or not the address has an
-- account, so the answer reveals nothing. At most one reset email a minute
-- per account; the link is valid 15 minutes.
create or replace function app_public.request_password_reset(email text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.email = btrim(coalesce(request_password_reset.email, ''))::citext;
  if v_user.id is not null and not exists (
       select from app_private.email_tokens t
        where t.user_id = v_user.id and t.purpose = 'password_reset' and t.created_at > now() - interval '1 minute') then
    perform app_private.queue_email(v_user.id, v_user.email, 'password_reset',
      jsonb_build_object('fullName', v_user.full_name,
                         'token', app_private.issue_email_token(v_user.id, 'password_reset', interval '15 minutes')));
  end if;
  return true;
end;
$$;
comment on function app_public.request_password_reset(text) is
  'Emails a password-reset link (valid 15 minutes) if the address has an account. Always answers true, so it does not reveal which addresses have accounts.';

-- resetPassword: the emailed token (single use) sets a new password and ends
-- every session. The token arrived by email, so the address is proven too.
create or replace function app_public.reset_password(token text, new_password text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user_id uuid;
  v_user app_public.users;
begin
  perform app_private.assert_valid_password(new_password);
  v_user_id := app_private.use_email_token(token, 'password_reset');
  if v_user_id is null then
    raise exception 'This password reset link is invalid, was already used or has expired' using errcode = 'PW006'; -- PASSWORD_RESET_TOKEN_INVALID
  end if;
  perform app_private.set_password(v_user_id, new_password);
  perform app_private.end_sessions(v_user_id, 'password_reset');
  update app_public.users u set email_verified_at = coalesce(u.email_verified_at, now())
   where u.id = v_user_id returning * into v_user;
  perform app_private.queue_email(v_user.id, v_user.email, 'password_changed', jsonb_build_object('fullName', v_user.full_name));
  return true;
end;
$$;
comment on function app_public.reset_password(text, text) is
  'Sets a new password with the token from the reset email (single use, 15 minutes) and signs out every session.';

-- signOutEverywhere: ends every session of the caller, this one included.
create or replace function app_public.sign_out_everywhere()
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user_id uuid := app_public.current_user_id();
begin
  if v_user_id is null then
    raise exception 'Sign in to sign out' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.end_sessions(v_user_id, 'sign_out_everywhere');
end;
$$;
comment on function app_public.sign_out_everywhere() is
  'Ends every session of yours, this one included; returns how many were ended.';

revoke all on function app_private.assert_valid_password(text) from public;
revoke all on function app_private.set_password(uuid, text) from public;
revoke all on function app_private.end_sessions(uuid, text, uuid) from public;
revoke all on function app_private.change_password(text, text) from public;
revoke all on function app_public.request_password_reset(text) from public;
revoke all on function app_public.reset_password(text, text) from public;
revoke all on function app_public.sign_out_everywhere() from public;
grant execute on function app_private.change_password(text, text) to app_user;
grant execute on function app_public.request_password_reset(text) to app_anonymous;
grant execute on function app_public.reset_password(text, text) to app_anonymous;
grant execute on function app_public.sign_out_everywhere() to app_user;
--! EndIncluded accounts/passwords.sql
--! Included accounts/client_activity.sql
-- Where sign-ins and money requests came from, for fraud review (issue 9 §4).
-- The API passes the client address and user agent of every GraphQL request as
-- request.client_ip and request.user_agent (src/http/graphql/preset.ts). Login
-- attempts keep them on their own row (sql/auth/login.sql); deposits,
-- withdrawals and bank-account changes get a line in app_private.client_activity
-- from the triggers below, so no payment function had to change. Only admins
-- (adminClientActivity) and auditors (audit.client_activity,
-- audit.login_attempts) can read them; app_user never can.

-- The User-Agent the API passed, or null (the API already bounds its length).
create or replace function app_private.request_user_agent()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select left(nullif(current_setting('request.user_agent', true), ''), 512);
$$;

create or replace function app_private.tg_record_client_activity()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_row record := case when tg_op = 'DELETE' then old else new end;
  v_action text := case
    when tg_table_name = 'deposits' then 'deposit_requested'
    when tg_table_name = 'withdrawals' then 'withdrawal_requested'
    when tg_op = 'INSERT' then 'bank_account_added'
    when tg_op = 'DELETE' then 'bank_account_removed'
    else 'bank_account_changed' end;
begin
  insert into app_private.client_activity (action, user_id, subject_id, client_ip, user_agent, request_id)
  values (v_action, v_row.user_id, v_row.id, app_private.request_client_ip(), app_private.request_user_agent(),
          left(nullif(current_setting('pgwallet.request_id', true), ''), 64));
  return null;
end;
$$;

create or replace trigger _900_client_activity after insert on app_public.deposits
  for each row execute function app_private.tg_record_client_activity();
create or replace trigger _900_client_activity after insert on app_public.withdrawals
  for each row execute function app_private.tg_record_client_activity();
create or replace trigger _900_client_activity after insert or update or delete on app_public.bank_accounts
  for each row execute function app_private.tg_record_client_activity();

-- For auditors: money requests and bank-account changes, and sign-in attempts.
create or replace view audit.client_activity as
  select a.id, a.occurred_at, a.action, a.user_id, u.email, a.subject_id, a.client_ip, a.user_agent, a.request_id
    from app_private.client_activity a
    left join app_public.users u on u.id = a.user_id;

create or replace view audit.login_attempts as
  select a.id, a.attempted_at, a.email, a.succeeded, a.client_ip, a.user_agent
    from app_private.login_attempts a;

-- For admins: one user's recent activity and sign-in attempts, newest first.
create or replace function app_public.admin_client_activity(user_id uuid, max_rows integer default 100)
returns table (occurred_at timestamptz, action text, subject_id uuid, client_ip inet, user_agent text)
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query
    select * from (
      select a.occurred_at, a.action, a.subject_id, a.client_ip, a.user_agent
        from app_private.client_activity a
       where a.user_id = admin_client_activity.user_id
      union all
      select l.attempted_at, case when l.succeeded then 'login_succeeded' else 'login_failed' end, null::uuid, l.client_ip, l.user_agent
        from app_private.login_attempts l
        join app_public.users u on u.email = l.email
       where u.id = admin_client_activity.user_id
    ) x
    order by x.occurred_at desc
    limit least(greatest(coalesce(max_rows, 100), 1), 1000);
end;
$$;
comment on function app_public.admin_client_activity(uuid, integer) is
  'Admins only: where a user''s sign-ins, deposits, withdrawals and bank-account changes came from (address, user agent), newest first.';

revoke all on app_private.client_activity from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on audit.client_activity, audit.login_attempts from public;
grant select on audit.client_activity, audit.login_attempts to app_auditor;
revoke all on function app_private.request_user_agent() from public;
revoke all on function app_private.tg_record_client_activity() from public;
revoke all on function app_public.admin_client_activity(uuid, integer) from public;
grant execute on function app_public.admin_client_activity(uuid, integer) to app_admin;
--! EndIncluded accounts/client_activity.sql
--! Included auth/register.sql
-- Sign-up. Validation errors are raised with registered SQLSTATEs (the
-- trailing comment names the stable code; tests keep the two in step).

create or replace function app_private.assert_valid_registration(p_email text, p_password text, p_full_name text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_email is null or length(p_email) > 254 or p_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
    raise exception 'Enter a valid email address' using errcode = 'PW001'; -- EMAIL_INVALID
  end if;
  -- bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
  if p_password is null or length(p_password) < 10 or octet_length(p_password) > 72 then
    raise exception 'Passwords must be 10 to 72 bytes long' using errcode = 'PW002'; -- PASSWORD_WEAK
  end if;
  if p_full_name is null or length(btrim(p_full_name)) not between 1 and 200 then
    raise exception 'Full name must be 1 to 200 characters' using errcode = 'PW003'; -- FULL_NAME_INVALID
  end if;
end;
$$;

create or replace function app_private.register(p_email text, p_password text, p_full_name text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  perform app_private.assert_valid_registration(p_email, p_password, p_full_name);
  insert into app_public.users (email, full_name)
  values (btrim(p_email), btrim(p_full_name))
  on conflict (email) do nothing
  returning * into v_user;
  if v_user.id is null then
    raise exception 'An account with this email address already exists' using errcode = 'PW004'; -- EMAIL_TAKEN
  end if;
  insert into app_private.user_secrets (user_id, password_hash)
  values (v_user.id, crypt(p_password, gen_salt('bf', 10)));
  -- The account starts unverified: it can deposit, but cannot receive
  -- transfers or withdraw until the emailed link is used (accounts/email.sql).
  perform app_private.send_verification_email(v_user);
  return app_private.start_session(v_user);
end;
$$;

revoke all on function app_private.assert_valid_registration(text, text, text) from public;
revoke all on function app_private.register(text, text, text) from public;
grant execute on function app_private.register(text, text, text) to app_anonymous;
--! EndIncluded auth/register.sql
--! Included auth/login.sql
-- Sign-in with throttling. Failures are *returned* (outcome 'invalid' or
-- 'locked'), not raised, so that the recorded attempt survives: an exception
-- would roll the attempt back and make the lockout count nothing.

-- How long the caller must wait, or null when another attempt is allowed:
-- 5 failures within 15 minutes (since the last success) lock the email until
-- the oldest of those 5 leaves the window.
create or replace function app_private.login_locked_until(p_email citext)
returns timestamptz
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  with recent_failures as (
    select a.attempted_at
      from app_private.login_attempts a
     where a.email = p_email
       and not a.succeeded
       and a.attempted_at > now() - interval '15 minutes'
       and a.attempted_at > coalesce((select max(s.attempted_at)
                                        from app_private.login_attempts s
                                       where s.email = p_email and s.succeeded), '-infinity')
     order by a.attempted_at desc
     limit 5
  )
  select min(attempted_at) + interval '15 minutes'
    from recent_failures
  having count(*) >= 5;
$$;

create or replace function app_private.login(p_email text, p_password text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_email citext := btrim(coalesce(p_email, ''));
  v_locked_until timestamptz;
  v_user app_public.users;
  v_hash text;
  v_check text;
begin
  -- One attempt per email at a time, so parallel guesses cannot all slip under the limit.
  perform pg_advisory_xact_lock(hashtextextended('login:' || lower(v_email::text), 0));

  v_locked_until := app_private.login_locked_until(v_email);
  if v_locked_until is not null then
    return row('locked', null, null, null, null, null, null, v_locked_until)::app_private.auth_result;
  end if;

  select u.* into v_user from app_public.users u where u.email = v_email;
  select s.password_hash into v_hash from app_private.user_secrets s where s.user_id = v_user.id;

  -- Unknown emails pay for one bcrypt of the same cost, so response time does
  -- not reveal which addresses have accounts (tests/accounts.test.ts measures
  -- both). The hash is computed *before* the test: in `v_hash is null or
  -- crypt(...)` the OR stops at a null hash and the bcrypt never runs.
  v_check := crypt(coalesce(p_password, ''), coalesce(v_hash, gen_salt('bf', 10)));
  if v_hash is null or v_check is distinct from v_hash then
    insert into app_private.login_attempts (email, succeeded, client_ip, user_agent)
    values (v_email, false, app_private.request_client_ip(), app_private.request_user_agent());
    return row('invalid', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  insert into app_private.login_attempts (email, succeeded, client_ip, user_agent)
  values (v_email, true, app_private.request_client_ip(), app_private.request_user_agent());
  return app_private.start_session(v_user);
end;
$$;

revoke all on function app_private.login_locked_until(citext) from public;
revoke all on function app_private.login(text, text) from public;
grant execute on function app_private.login(text, text) to app_anonymous;
--! EndIncluded auth/login.sql
--! Included auth/refresh.sql
-- Token rotation and logout. Like login, outcomes are returned rather than
-- raised so that a revocation caused by token reuse (or by the session's
-- absolute lifetime) is committed.

create or replace function app_private.refresh_session(p_refresh_token text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_token app_private.refresh_tokens;
  v_session app_private.sessions;
  v_user app_public.users;
begin
  -- FOR UPDATE: two refreshes racing with one token are serialised, and the
  -- loser sees a rotated token, which is exactly the reuse we must catch.
  select * into v_token
    from app_private.refresh_tokens t
   where t.token_hash = app_private.refresh_token_hash(p_refresh_token)
     for update;
  select * into v_session from app_private.sessions s where s.id = v_token.session_id for update;
  if v_token.session_id is null or v_token.expires_at <= now() or v_session.revoked_at is not null then
    return row('invalid', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  -- Absolute lifetime (SESSION_MAX_AGE_DAYS, passed by the API as
  -- pgwallet.session_max_age_seconds; 30 days by default): however often it is
  -- refreshed, a session ends this long after sign-in.
  if v_session.created_at <= now() - make_interval(secs => coalesce(
       nullif(current_setting('pgwallet.session_max_age_seconds', true), '')::bigint, 30 * 86400)) then
    update app_private.sessions set revoked_at = now(), revoked_reason = 'expired' where id = v_session.id;
    return row('expired', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  if v_token.rotated_at is not null then
    update app_private.sessions
       set revoked_at = now(), revoked_reason = 'refresh_token_reuse'
     where id = v_session.id;
    return row('reused', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  update app_private.refresh_tokens set rotated_at = now() where token_hash = v_token.token_hash;
  update app_private.sessions set last_refreshed_at = now() where id = v_session.id;
  select * into v_user from app_public.users u where u.id = v_session.user_id;
  return row('ok', v_user.id, v_user.email::text, v_user.full_name, v_user.role::text,
             v_session.id, app_private.issue_refresh_token(v_session.id), null)::app_private.auth_result;
end;
$$;

-- Ends the session the token belongs to. Unknown tokens are not an error:
-- logging out twice is fine, and the answer must not reveal which tokens exist.
create or replace function app_private.logout(p_refresh_token text)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  update app_private.sessions s
     set revoked_at = now(), revoked_reason = 'logout'
    from app_private.refresh_tokens t
   where t.token_hash = app_private.refresh_token_hash(p_refresh_token)
     and s.id = t.session_id
     and s.revoked_at is null;
$$;

revoke all on function app_private.refresh_session(text) from public;
revoke all on function app_private.logout(text) from public;
grant execute on function app_private.refresh_session(text) to app_anonymous;
grant execute on function app_private.logout(text) to app_anonymous;
--! EndIncluded auth/refresh.sql
--! Included ledger/transfer.sql
-- User-to-user transfers: same currency, one idempotent entry.
-- app_private.transfer does the work for a caller already identified;
-- app_public.transfer is the GraphQL mutation and identifies the caller.

-- What transfer returns for an entry, as the sender sees it. Built from the
-- immutable entry, so a repeated request gets exactly the first answer.
create or replace function app_private.transfer_entry(p_entry_id uuid)
returns app_public.transfer_entry
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  select e.id, e.kind, d.amount, d.currency, e.memo, s.account_id, d.account_id, u.full_name, e.created_at
    from ledger.entries e
    join ledger.postings s on s.entry_id = e.id and s.amount < 0
    join ledger.postings d on d.entry_id = e.id and d.amount > 0
    join ledger.accounts da on da.id = d.account_id
    left join app_public.users u on u.id = da.owner_id
   where e.id = p_entry_id;
$$;

create or replace function app_private.transfer(
  p_caller uuid,
  p_from_wallet_id uuid,
  p_to_email text,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_memo text := nullif(btrim(p_memo), '');
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
  v_recipient record;
begin
  perform ledger.assert_amount(p_amount);
  if length(v_memo) > 140 then
    raise exception 'The memo may be at most 140 characters' using errcode = 'PW111'; -- MEMO_INVALID
  end if;

  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'transfer',
    jsonb_build_object('from', p_from_wallet_id, 'to', lower(btrim(p_to_email)), 'amount', p_amount, 'memo', v_memo),
    v_entry_id);
  if v_first_entry_id is not null then
    return app_private.transfer_entry(v_first_entry_id);
  end if;

  -- Someone else's wallet is reported exactly like a missing one.
  select a.* into v_from from ledger.accounts a
   where a.id = p_from_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_from_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;

  select u.id, u.full_name, u.email_verified_at is not null as verified, a.id as wallet_id into v_recipient
    from app_public.users u
    left join ledger.accounts a on a.kind = 'user_wallet' and a.owner_id = u.id and a.currency = v_from.currency
   where u.email = btrim(p_to_email)::citext;
  if not found then
    raise exception 'No user has the email address %', p_to_email using errcode = 'PW107'; -- RECIPIENT_NOT_FOUND
  end if;
  if v_recipient.id = p_caller then
    raise exception 'You cannot transfer money to yourself' using errcode = 'PW108'; -- TRANSFER_TO_SELF
  end if;
  -- Money goes only to addresses proven to belong to someone (issue 9 §4).
  if not v_recipient.verified then
    raise exception '% has not verified their email address yet', p_to_email using errcode = 'PW007'; -- RECIPIENT_UNVERIFIED
  end if;
  if v_recipient.wallet_id is null then
    raise exception 'The recipient has no % wallet', v_from.currency using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  -- Accounts are locked only in here, after every check above, to keep the
  -- time wallets stay locked short.
  perform ledger.move('transfer', v_from.id, v_recipient.wallet_id, p_amount, v_memo,
                      jsonb_build_object('from_user', p_caller, 'to_user', v_recipient.id),
                      v_caller || '/' || p_idempotency_key, v_entry_id);
  -- The entry as transfer_entry(v_entry_id) would read it back.
  return row(v_entry_id, 'transfer', p_amount, v_from.currency, v_memo, v_from.id, v_recipient.wallet_id,
             v_recipient.full_name, now())::app_public.transfer_entry;
end;
$$;

comment on type app_public.transfer_entry is 'A transfer as its sender sees it.';
comment on column app_public.transfer_entry.id is E'@notNull\nThe journal entry''s id.';
comment on column app_public.transfer_entry.kind is '@notNull';
comment on column app_public.transfer_entry.amount is E'@notNull\nMinor units moved.';
comment on column app_public.transfer_entry.currency is '@notNull';
comment on column app_public.transfer_entry.from_wallet_id is '@notNull';
comment on column app_public.transfer_entry.to_wallet_id is '@notNull';
comment on column app_public.transfer_entry.created_at is E'@notNull\nWhen the transfer was recorded.';

-- The GraphQL mutation `transfer`.
create or replace function app_public.transfer(
  from_wallet_id uuid,
  to_email text,
  amount bigint,
  idempotency_key text,
  memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to transfer money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.transfer(v_caller, from_wallet_id, to_email, amount, idempotency_key, memo);
end;
$$;
comment on function app_public.transfer(uuid, text, bigint, text, text) is
  E'Moves `amount` minor units from one of your wallets to the wallet of the same currency of the user with email `toEmail`. '
  'Repeating a request with the same `idempotencyKey` returns the first result and moves nothing; reusing a key for a different request fails with IDEMPOTENCY_KEY_REUSED.';

-- A payment from a wallet to the fees account: the "hot system account" case.
-- Every such payment credits one logical account, sharded (system_account).
create or replace function app_private.pay_fee(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
begin
  perform ledger.assert_amount(p_amount);
  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'pay_fee',
    jsonb_build_object('wallet', p_wallet_id, 'amount', p_amount, 'memo', p_memo), v_entry_id);
  if v_first_entry_id is not null then
    return v_first_entry_id;
  end if;
  select a.* into v_from from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  return ledger.move('fee', v_from.id, ledger.system_account('fees', v_from.currency), p_amount, p_memo,
                     '{}', v_caller || '/' || p_idempotency_key, v_entry_id);
end;
$$;

revoke all on function app_private.transfer_entry(uuid) from public;
revoke all on function app_private.transfer(uuid, uuid, text, bigint, text, text) from public;
revoke all on function app_private.pay_fee(uuid, uuid, bigint, text, text) from public;
revoke all on function app_public.transfer(uuid, text, bigint, text, text) from public;
grant execute on function app_public.transfer(uuid, text, bigint, text, text) to app_user;
--! EndIncluded ledger/transfer.sql
--! Included payments/withdrawals.sql
-- Withdrawals: requestWithdrawal places a hold on the wallet (the available
-- balance drops at once) and queues revio.create_payout in one transaction.
-- The task creates and executes the payout (reference = the withdrawal id);
-- payout.success captures the hold (wallet → withdrawals in flight → Revio
-- clearing), payout.failed or a final refusal releases it (revio_events.sql).

-- Creates a withdrawal for p_caller, or returns the one an earlier identical
-- request made; a different request with the same key fails with
-- IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.request_withdrawal(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_bank_account_id uuid,
  p_idempotency_key text
)
returns app_public.withdrawals
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_min bigint := app_private.payment_setting('withdrawal_min_cents');
  v_max bigint := app_private.payment_setting('withdrawal_max_cents');
  v_daily bigint := app_private.payment_setting('withdrawal_daily_limit_cents');
  v_wallet ledger.accounts;
  v_withdrawal app_public.withdrawals;
  v_last_24h bigint;
  v_hold_id uuid;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  select a.* into v_wallet from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  -- An unverified account may deposit but not take money out (issue 9 §4).
  if not exists (select from app_public.users u where u.id = p_caller and u.email_verified_at is not null) then
    raise exception 'Verify your email address before withdrawing' using errcode = 'PW008'; -- EMAIL_NOT_VERIFIED
  end if;
  if not exists (select from app_public.bank_accounts b where b.id = p_bank_account_id and b.user_id = p_caller) then
    raise exception 'Bank account % not found', p_bank_account_id using errcode = 'PW211'; -- BANK_ACCOUNT_NOT_FOUND
  end if;
  if p_amount is null or p_amount < v_min or p_amount > v_max then
    raise exception 'A withdrawal must be between % and %', app_private.format_money(v_min, v_wallet.currency),
      app_private.format_money(v_max, v_wallet.currency)
      using errcode = 'PW202'; -- WITHDRAWAL_AMOUNT_OUT_OF_RANGE
  end if;

  insert into app_public.withdrawals (user_id, wallet_id, bank_account_id, amount, currency, idempotency_key)
  values (p_caller, v_wallet.id, p_bank_account_id, p_amount, v_wallet.currency, p_idempotency_key)
  on conflict (user_id, idempotency_key) do nothing
  returning * into v_withdrawal;
  if v_withdrawal.id is null then
    select w.* into v_withdrawal from app_public.withdrawals w
     where w.user_id = p_caller and w.idempotency_key = p_idempotency_key;
    if v_withdrawal.wallet_id <> p_wallet_id or v_withdrawal.amount <> p_amount
       or v_withdrawal.bank_account_id <> p_bank_account_id then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_withdrawal;
  end if;

  -- The wallet's row lock serialises withdrawals from one wallet, so two
  -- requests at once cannot both fit under the daily limit. (place_hold
  -- locks the same row again; every ledger writer locks accounts first.)
  perform from ledger.accounts a where a.id = v_wallet.id for update;
  select coalesce(sum(w.amount), 0) into v_last_24h
    from app_public.withdrawals w
   where w.wallet_id = v_wallet.id and w.created_at > now() - interval '24 hours' and w.status <> 'failed';
  if v_last_24h > v_daily then
    raise exception 'Withdrawals from this wallet may total at most % in 24 hours; % is left',
      app_private.format_money(v_daily, v_wallet.currency),
      app_private.format_money(greatest(v_daily - (v_last_24h - p_amount), 0), v_wallet.currency)
      using errcode = 'PW203'; -- WITHDRAWAL_DAILY_LIMIT_EXCEEDED
  end if;

  -- The hold never expires by itself: while a payout may be under way the
  -- money must stay reserved; success captures it and failure releases it.
  v_hold_id := ledger.place_hold(v_wallet.id, p_amount, 'infinity', 'Withdrawal ' || v_withdrawal.id);
  update app_public.withdrawals set hold_id = v_hold_id where id = v_withdrawal.id
  returning * into v_withdrawal;

  perform app_private.queue_revio_job('revio.create_payout', 'withdrawal:' || v_withdrawal.id,
                                      json_build_object('withdrawal_id', v_withdrawal.id));
  return v_withdrawal;
end;
$$;

-- The GraphQL mutation `requestWithdrawal`.
create or replace function app_public.request_withdrawal(wallet_id uuid, amount bigint, bank_account_id uuid, idempotency_key text)
returns app_public.withdrawals
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to withdraw money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.request_withdrawal(v_caller, request_withdrawal.wallet_id, request_withdrawal.amount,
                                        request_withdrawal.bank_account_id, request_withdrawal.idempotency_key);
end;
$$;
comment on function app_public.request_withdrawal(uuid, bigint, uuid, text) is
  E'Withdraws `amount` minor units from one of your wallets to one of your bank accounts. The amount is held at once '
  '(the available balance drops) and paid out through Revio: status `requested`, then `submitted`, then `paid`, or `failed` '
  'with `failureReason` (the hold is then released). Limits per withdrawal and per 24 hours are configured on the server. '
  'Repeating a request with the same `idempotencyKey` returns the first withdrawal.';

revoke all on function app_private.request_withdrawal(uuid, uuid, bigint, uuid, text) from public;
revoke all on function app_public.request_withdrawal(uuid, bigint, uuid, text) from public;
grant execute on function app_public.request_withdrawal(uuid, bigint, uuid, text) to app_user;
--! EndIncluded payments/withdrawals.sql

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

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

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

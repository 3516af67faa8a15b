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

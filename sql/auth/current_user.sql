-- Who is calling. Express verifies the JWT and passes its claims as
-- request.jwt.claims.*; these functions are what RLS policies consult.

-- The session named by the token, if it is still live. Checking the session
-- (not just the signature) makes logout and token-reuse revocation take effect
-- at once instead of when the 15-minute access token expires.
create or replace function app_public.current_session_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.id
    from app_private.sessions s
   where s.id = nullif(current_setting('request.jwt.claims.sid', true), '')::uuid
     and s.user_id = nullif(current_setting('request.jwt.claims.sub', true), '')::uuid
     and s.revoked_at is null;
$$;
comment on function app_public.current_session_id() is
  E'@behavior -queryField\nThe live session of the caller, or null.';

create or replace function app_public.current_user_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.user_id
    from app_private.sessions s
   where s.id = app_public.current_session_id();
$$;
comment on function app_public.current_user_id() is
  E'@behavior -queryField\nThe signed-in user''s id, or null for visitors and revoked sessions.';

create or replace function app_public."current_user"()
returns app_public.users
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select u.* from app_public.users u where u.id = app_public.current_user_id();
$$;
comment on function app_public."current_user"() is 'The signed-in user, or null.';

revoke all on function app_public.current_session_id() from public;
revoke all on function app_public.current_user_id() from public;
revoke all on function app_public."current_user"() from public;
grant execute on function app_public.current_session_id() to app_anonymous;
grant execute on function app_public.current_user_id() to app_anonymous;
grant execute on function app_public."current_user"() to app_anonymous;

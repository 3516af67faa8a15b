-- Sessions and refresh tokens. A session is a token family: every refresh
-- rotates the token; presenting a rotated token again revokes the family
-- (refresh-token rotation with reuse detection, OAuth 2.0 Security BCP 4.14).
-- Only SHA-256 hashes of tokens are stored: 256 random bits need no slow hash.

create or replace function app_private.refresh_token_hash(token text)
returns bytea
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select sha256(convert_to(coalesce(token, ''), 'UTF8'));
$$;

-- Mints a refresh token for a session and returns it in clear, once.
create or replace function app_private.issue_refresh_token(p_session_id uuid)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  -- base64url without padding: 43 characters, 256 bits.
  v_token text := translate(encode(gen_random_bytes(32), 'base64'), '+/=', '-_');
begin
  insert into app_private.refresh_tokens (token_hash, session_id, expires_at)
  values (app_private.refresh_token_hash(v_token), p_session_id, now() + interval '14 days');
  return v_token;
end;
$$;

-- Opens a session for a user who has just proved who they are.
create or replace function app_private.start_session(p_user app_public.users)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_session_id uuid;
begin
  insert into app_private.sessions (user_id) values (p_user.id) returning id into v_session_id;
  return row('ok', p_user.id, p_user.email::text, p_user.full_name, p_user.role::text,
             v_session_id, app_private.issue_refresh_token(v_session_id), null)::app_private.auth_result;
end;
$$;

revoke all on function app_private.issue_refresh_token(uuid) from public;
revoke all on function app_private.start_session(app_public.users) from public;

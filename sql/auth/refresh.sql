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

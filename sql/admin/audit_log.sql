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

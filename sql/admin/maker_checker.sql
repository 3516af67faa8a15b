-- Maker-checker that one admin cannot defeat alone (issue 9 §1). Shared by
-- balance adjustments (sql/admin/adjustments.sql) and role changes
-- (sql/admin/role_changes.sql).
--
-- Refusals are *returned*, not raised. A raised exception would roll back the
-- admin-log line that records the refusal (PostgreSQL has no autonomous
-- transactions), so each maker-checker function does its policy checks before
-- changing anything, and on a refusal writes one 'refused' line to the admin
-- log and returns an app_private.admin_outcome with the stable code. The
-- transaction then commits only that log line; the GraphQL plugin
-- (src/http/graphql/admin-plugin.ts) turns the code into an error. Malformed
-- input (no reason, unknown id) still raises: nothing was attempted.

-- How long a role change ties two admins together (ADMIN_VOUCH_WINDOW_DAYS,
-- passed by the API as pgwallet.admin_vouch_window_days; 7 days otherwise).
create or replace function app_private.admin_vouch_window()
returns interval
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select make_interval(days => coalesce(nullif(current_setting('pgwallet.admin_vouch_window_days', true), '')::int, 7));
$$;

-- True when one of the two admins requested or approved a role change of the
-- other within the window. The issue asks for one direction (the approver
-- vouched for the requester); a bank's review asks for both, because the
-- account that was promoted is as likely to be the attacker's second account
-- as the one that promoted it.
create or replace function app_private.admins_recently_linked(p_a uuid, p_b uuid)
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  select exists (
    select from app_public.role_change_requests r
     where r.status = 'approved'
       and r.decided_at > now() - app_private.admin_vouch_window()
       and ((r.user_id = p_b and p_a in (r.requested_by, r.decided_by))
         or (r.user_id = p_a and p_b in (r.requested_by, r.decided_by))));
$$;

-- Logs a refused attempt and returns the outcome that carries its code.
create or replace function app_private.admin_refuse(
  p_attempt text, p_code text, p_message text, p_target_type text, p_target_id text, p_details jsonb default '{}'
)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.log_admin_action('refused', p_target_type, p_target_id,
    coalesce(p_details, '{}') || jsonb_build_object('attempt', p_attempt, 'code', p_code, 'message', p_message));
  return row(p_code, p_message, null)::app_private.admin_outcome;
end;
$$;

create or replace function app_private.admin_ok(p_id uuid)
returns app_private.admin_outcome
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select row(null, null, p_id)::app_private.admin_outcome;
$$;

revoke all on function app_private.admin_vouch_window() from public;
revoke all on function app_private.admins_recently_linked(uuid, uuid) from public;
revoke all on function app_private.admin_refuse(text, text, text, text, text, jsonb) from public;
revoke all on function app_private.admin_ok(uuid) from public;

-- Granting or removing the admin role is a maker-checker request (issue 9 §1):
-- one admin requests it (never for themselves), a different admin approves
-- it (never the person concerned, nor an admin tied to the requester by a
-- recent role change). The first admin still comes only from
-- `npm run admin:grant` (app_private.grant_admin, the owner connection).
-- Refusals are returned and logged; see sql/admin/maker_checker.sql.

alter table app_public.role_change_requests enable row level security;
drop policy if exists select_for_admins on app_public.role_change_requests;
create policy select_for_admins on app_public.role_change_requests
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

create or replace function app_private.admin_request_role_change(p_user_id uuid, p_role app_public.user_role, p_reason text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(p_reason);
  v_current app_public.user_role;
  v_id uuid;
begin
  if p_user_id = v_admin then
    return app_private.admin_refuse('request_role_change', 'ADMIN_SELF_ACTION', -- returned, not raised
      'Admins cannot change their own role; ask another admin', 'user', p_user_id::text, jsonb_build_object('to', p_role));
  end if;
  select u.role into v_current from app_public.users u where u.id = p_user_id and u.erased_at is null for update;
  if not found or p_role is null then
    raise exception 'No such user' using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_current = p_role then
    raise exception 'The user already has the role %', p_role using errcode = 'PW401'; -- ROLE_UNCHANGED
  end if;
  if exists (select from app_public.role_change_requests r where r.user_id = p_user_id and r.status = 'pending') then
    raise exception 'A role change for this user is already waiting for approval' using errcode = 'PW402'; -- ROLE_CHANGE_PENDING
  end if;
  insert into app_public.role_change_requests (user_id, from_role, role, reason, requested_by)
  values (p_user_id, v_current, p_role, v_reason, v_admin)
  returning id into v_id;
  perform app_private.log_admin_action('request_role_change', 'user', p_user_id::text,
    jsonb_build_object('request_id', v_id, 'from', v_current, 'to', p_role, 'reason', v_reason));
  return app_private.admin_ok(v_id);
end;
$$;
comment on function app_private.admin_request_role_change(uuid, app_public.user_role, text) is
  'Admins only: ask for a user to become an admin or a plain user (never yourself). Another admin must approve. Logged; refusals too.';

create or replace function app_private.admin_decide_role_change(p_request_id uuid, p_approve boolean, p_note text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(p_note);
  v_row app_public.role_change_requests;
  v_refusal text[];
begin
  if p_approve is null then
    raise exception 'Say whether to approve' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  select r.* into v_row from app_public.role_change_requests r where r.id = p_request_id for update;
  if v_row.id is null then
    raise exception 'No such role change request' using errcode = 'PW403'; -- ROLE_CHANGE_NOT_FOUND
  end if;
  if v_row.status <> 'pending' then
    raise exception 'This role change was already %', v_row.status using errcode = 'PW404'; -- ROLE_CHANGE_NOT_PENDING
  end if;
  if p_approve then
    v_refusal := case
      when v_row.requested_by = v_admin then
        array['ADMIN_SELF_APPROVAL', 'Another admin must approve a role change you requested'] -- returned
      when v_row.user_id = v_admin then
        array['ADMIN_SELF_ACTION', 'Admins cannot approve a change of their own role'] -- returned
      when app_private.admins_recently_linked(v_admin, v_row.requested_by) then
        array['ADMIN_RECENTLY_VOUCHED', 'You cannot approve a request by an admin whose role you (or who your role) changed recently'] -- returned
    end;
    if v_refusal is not null then
      return app_private.admin_refuse('approve_role_change', v_refusal[1], v_refusal[2], 'user', v_row.user_id::text,
        jsonb_build_object('request_id', v_row.id, 'to', v_row.role, 'requested_by', v_row.requested_by));
    end if;
    -- Lock the user; the role must still be what the request saw.
    perform from app_public.users u where u.id = v_row.user_id and u.role = v_row.from_role and u.erased_at is null for update;
    if not found then
      raise exception 'The user''s role changed since the request; request again' using errcode = 'PW401'; -- ROLE_UNCHANGED
    end if;
    update app_public.users u set role = v_row.role where u.id = v_row.user_id;
    -- Their sessions end, so the next sign-in carries the new role (a demoted
    -- admin's token dies at once anyway: current_admin_id reads users.role).
    update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = v_row.user_id and s.revoked_at is null;
    update app_public.role_change_requests r
       set status = 'approved', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where r.id = v_row.id returning * into v_row;
  else
    update app_public.role_change_requests r
       set status = 'rejected', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where r.id = v_row.id returning * into v_row;
  end if;
  perform app_private.log_admin_action(case when v_row.status = 'approved' then 'approve_role_change' else 'reject_role_change' end,
    'user', v_row.user_id::text,
    jsonb_build_object('request_id', v_row.id, 'from', v_row.from_role, 'to', v_row.role,
                       'requested_by', v_row.requested_by, 'note', v_note));
  return app_private.admin_ok(v_row.id);
end;
$$;
comment on function app_private.admin_decide_role_change(uuid, boolean, text) is
  'Admins only: approve (the role changes, sessions end) or reject a pending role change. Refused (and logged) for the requester, the person concerned, and admins tied to the requester by a recent role change.';

comment on table app_public.role_change_requests is
  E'@behavior -insert -update -delete\nAdmins only: requests to grant or remove the admin role, made by one admin and approved or rejected by another.';
comment on column app_public.role_change_requests.role is 'The role asked for.';
comment on column app_public.role_change_requests.from_role is 'The role the user had when the request was made.';

revoke all on app_public.role_change_requests from public, app_anonymous, app_user, app_auditor, authenticator;
grant select on app_public.role_change_requests to app_admin;
revoke all on function app_private.admin_request_role_change(uuid, app_public.user_role, text) from public;
revoke all on function app_private.admin_decide_role_change(uuid, boolean, text) from public;
grant execute on function app_private.admin_request_role_change(uuid, app_public.user_role, text) to app_admin;
grant execute on function app_private.admin_decide_role_change(uuid, boolean, text) to app_admin;

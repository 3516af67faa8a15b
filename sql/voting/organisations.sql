-- Organisations are the tenants of the voting product: every event, category,
-- contestant, vote and score carries its organisation's id, and RLS lets a
-- member see only their organisations' rows (sql/voting/policies.sql).

-- The organisations the caller belongs to (with their role). SECURITY DEFINER
-- so policies can use it without recursing into organisation_members' own RLS.
create or replace function app_private.my_organisation_ids()
returns setof uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.organisation_id from app_public.organisation_members m
   where m.user_id = app_public.current_user_id();
$$;

-- Raises ORGANISATION_ACCESS_DENIED unless p_user is a member (an owner, if
-- p_owner) of the organisation. Strangers and missing organisations look alike.
create or replace function app_private.assert_member(p_user uuid, p_organisation_id uuid, p_owner boolean default false)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_user is null or not exists (
    select from app_public.organisation_members m
     where m.organisation_id = p_organisation_id and m.user_id = p_user
       and (not p_owner or m.role = 'owner')) then
    raise exception 'You are not % of this organisation', case when p_owner then 'an owner' else 'a member' end
      using errcode = 'PW610'; -- ORGANISATION_ACCESS_DENIED
  end if;
end;
$$;

create or replace function app_private.require_user()
returns uuid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_public.current_user_id();
begin
  if v_user is null then
    raise exception 'Sign in first' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return v_user;
end;
$$;

-- The GraphQL mutation `createOrganisation`: the caller becomes its owner.
create or replace function app_public.create_organisation(name text)
returns app_public.organisations
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_org app_public.organisations;
begin
  insert into app_public.organisations (name, created_by) values (btrim(create_organisation.name), v_user)
  returning * into v_org;
  insert into app_public.organisation_members (organisation_id, user_id, role) values (v_org.id, v_user, 'owner');
  return v_org;
end;
$$;
comment on function app_public.create_organisation(text) is 'Creates an organisation that runs events; you become its owner.';

-- The GraphQL mutation `addOrganisationMember` (owners only).
create or replace function app_public.add_organisation_member(
  organisation_id uuid,
  email text,
  role app_public.organisation_role default 'member'
)
returns app_public.organisation_members
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_member uuid;
  v_row app_public.organisation_members;
begin
  perform app_private.assert_member(v_user, add_organisation_member.organisation_id, true);
  select u.id into v_member from app_public.users u where u.email = btrim(add_organisation_member.email)::citext;
  if v_member is null then
    raise exception 'No user has the email address %', add_organisation_member.email using errcode = 'PW617'; -- INVITEE_NOT_FOUND
  end if;
  insert into app_public.organisation_members (organisation_id, user_id, role)
  values (add_organisation_member.organisation_id, v_member, coalesce(add_organisation_member.role, 'member'))
  on conflict on constraint organisation_members_pkey do update set role = excluded.role
  returning * into v_row;
  return v_row;
end;
$$;
comment on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) is
  'Adds (or changes the role of) a member of your organisation. Owners only.';

revoke all on function app_private.my_organisation_ids() from public;
revoke all on function app_private.assert_member(uuid, uuid, boolean) from public;
revoke all on function app_private.require_user() from public;
revoke all on function app_public.create_organisation(text) from public;
revoke all on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) from public;
grant execute on function app_private.my_organisation_ids() to app_user;
grant execute on function app_public.create_organisation(text) to app_user;
grant execute on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) to app_user;

-- Admins list users and wallets, and change roles. A user never raises their
-- own role: app_user may update only full_name (sql/auth/users_policies.sql),
-- and the role changes only through a role-change request one admin makes and
-- another approves (sql/admin/maker_checker.sql), or app_private.grant_admin
-- (npm run admin:grant, the owner connection: how the first admin is made).

-- Admins see every user (allUsers); everyone else still sees only themselves.
drop policy if exists select_all_for_admins on app_public.users;
create policy select_all_for_admins on app_public.users
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

-- Every wallet with its owner, for admins (freeze/unfreeze, adjustments).
create or replace view app_public.admin_wallets with (security_barrier) as
  select a.id,
         a.owner_id,
         u.email as owner_email,
         u.full_name as owner_name,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
    join app_public.users u on u.id = a.owner_id
   where a.kind = 'user_wallet'
     and (select app_private.current_admin_id()) is not null;
comment on view app_public.admin_wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nAdmins only: every user wallet with its owner. Amounts in minor units.';
comment on column app_public.admin_wallets.id is E'@notNull';
comment on column app_public.admin_wallets.owner_id is E'@notNull';
comment on column app_public.admin_wallets.owner_email is E'@notNull';
comment on column app_public.admin_wallets.owner_name is E'@notNull';
comment on column app_public.admin_wallets.currency is E'@notNull';
comment on column app_public.admin_wallets.balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.frozen is E'@notNull';
comment on column app_public.admin_wallets.created_at is E'@notNull\n@behavior -filterBy';

-- Role changes are maker-checker requests (sql/admin/maker_checker.sql); the
-- direct setter of the first version is gone so no single admin can promote
-- a second account of their own.
drop function if exists app_public.admin_set_user_role(uuid, app_public.user_role, text);

-- npm run admin:grant -- <email>: the way to create the first admin. Runs on
-- the owner connection (no API role may execute it) and is logged as 'cli'.
create or replace function app_private.grant_admin(p_email text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.email = btrim(p_email)::citext and u.erased_at is null for update;
  if v_user.id is null then
    raise exception 'No user has the email address %', p_email using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_user.role <> 'admin' then
    update app_public.users set role = 'admin' where id = v_user.id;
    update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = v_user.id and s.revoked_at is null;
    perform app_private.log_admin_action('grant_admin', 'user', v_user.id::text, jsonb_build_object('from', v_user.role, 'to', 'admin'));
  end if;
  return v_user.id;
end;
$$;

revoke all on app_public.admin_wallets from public, app_anonymous, app_user;
grant select on app_public.admin_wallets to app_admin;
revoke all on function app_private.grant_admin(text) from public;

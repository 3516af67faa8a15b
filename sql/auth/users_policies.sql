-- Users see and edit only their own row. Emails and roles are never writable
-- through the API: the only writable column is full_name.
alter table app_public.users enable row level security;

drop policy if exists select_own on app_public.users;
create policy select_own on app_public.users
  for select to app_user
  using (id = (select app_public.current_user_id()));

drop policy if exists update_own on app_public.users;
create policy update_own on app_public.users
  for update to app_user
  using (id = (select app_public.current_user_id()));

revoke all on app_public.users from public, app_anonymous, app_user;
grant select on app_public.users to app_user;
grant update (full_name) on app_public.users to app_user;

-- Where sign-ins and money requests came from, for fraud review (issue 9 §4).
-- The API passes the client address and user agent of every GraphQL request as
-- request.client_ip and request.user_agent (src/http/graphql/preset.ts). Login
-- attempts keep them on their own row (sql/auth/login.sql); deposits,
-- withdrawals and bank-account changes get a line in app_private.client_activity
-- from the triggers below, so no payment function had to change. Only admins
-- (adminClientActivity) and auditors (audit.client_activity,
-- audit.login_attempts) can read them; app_user never can.

-- The User-Agent the API passed, or null (the API already bounds its length).
create or replace function app_private.request_user_agent()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select left(nullif(current_setting('request.user_agent', true), ''), 512);
$$;

create or replace function app_private.tg_record_client_activity()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_row record := case when tg_op = 'DELETE' then old else new end;
  v_action text := case
    when tg_table_name = 'deposits' then 'deposit_requested'
    when tg_table_name = 'withdrawals' then 'withdrawal_requested'
    when tg_op = 'INSERT' then 'bank_account_added'
    when tg_op = 'DELETE' then 'bank_account_removed'
    else 'bank_account_changed' end;
begin
  insert into app_private.client_activity (action, user_id, subject_id, client_ip, user_agent, request_id)
  values (v_action, v_row.user_id, v_row.id, app_private.request_client_ip(), app_private.request_user_agent(),
          left(nullif(current_setting('pgwallet.request_id', true), ''), 64));
  return null;
end;
$$;

create or replace trigger _900_client_activity after insert on app_public.deposits
  for each row execute function app_private.tg_record_client_activity();
create or replace trigger _900_client_activity after insert on app_public.withdrawals
  for each row execute function app_private.tg_record_client_activity();
create or replace trigger _900_client_activity after insert or update or delete on app_public.bank_accounts
  for each row execute function app_private.tg_record_client_activity();

-- For auditors: money requests and bank-account changes, and sign-in attempts.
create or replace view audit.client_activity as
  select a.id, a.occurred_at, a.action, a.user_id, u.email, a.subject_id, a.client_ip, a.user_agent, a.request_id
    from app_private.client_activity a
    left join app_public.users u on u.id = a.user_id;

create or replace view audit.login_attempts as
  select a.id, a.attempted_at, a.email, a.succeeded, a.client_ip, a.user_agent
    from app_private.login_attempts a;

-- For admins: one user's recent activity and sign-in attempts, newest first.
create or replace function app_public.admin_client_activity(user_id uuid, max_rows integer default 100)
returns table (occurred_at timestamptz, action text, subject_id uuid, client_ip inet, user_agent text)
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query
    select * from (
      select a.occurred_at, a.action, a.subject_id, a.client_ip, a.user_agent
        from app_private.client_activity a
       where a.user_id = admin_client_activity.user_id
      union all
      select l.attempted_at, case when l.succeeded then 'login_succeeded' else 'login_failed' end, null::uuid, l.client_ip, l.user_agent
        from app_private.login_attempts l
        join app_public.users u on u.email = l.email
       where u.id = admin_client_activity.user_id
    ) x
    order by x.occurred_at desc
    limit least(greatest(coalesce(max_rows, 100), 1), 1000);
end;
$$;
comment on function app_public.admin_client_activity(uuid, integer) is
  'Admins only: where a user''s sign-ins, deposits, withdrawals and bank-account changes came from (address, user agent), newest first.';

revoke all on app_private.client_activity from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on audit.client_activity, audit.login_attempts from public;
grant select on audit.client_activity, audit.login_attempts to app_auditor;
revoke all on function app_private.request_user_agent() from public;
revoke all on function app_private.tg_record_client_activity() from public;
revoke all on function app_public.admin_client_activity(uuid, integer) from public;
grant execute on function app_public.admin_client_activity(uuid, integer) to app_admin;

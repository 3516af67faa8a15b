-- Commerce settings: app_private.commerce_settings rows (a DBA changes them
-- with an UPDATE), overridden per session by pgwallet.commerce_<name>.

create or replace function commerce.setting(p_name text)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(nullif(current_setting('pgwallet.commerce_' || p_name, true), '')::bigint,
                  (select s.value from app_private.commerce_settings s where s.name = p_name));
$$;
comment on function commerce.setting(text) is
  'A commerce setting: pgwallet.commerce_<name> if set in the session, else app_private.commerce_settings.';

revoke all on app_private.commerce_settings from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function commerce.setting(text) from public;

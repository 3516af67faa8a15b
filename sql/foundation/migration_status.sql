-- /ready asks whether the database has every committed migration. The API's
-- login role may not read graphile_migrate, so this definer function answers
-- with the name of the last applied migration only.
create or replace function app_private.latest_migration()
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select max(filename) from graphile_migrate.migrations;
$$;
revoke all on function app_private.latest_migration() from public;
grant execute on function app_private.latest_migration() to authenticator;

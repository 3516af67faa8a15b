// Creates the cluster-wide roles and the application database, as a superuser.
// graphile-migrate cannot do this: roles belong to the cluster, not to one
// database, and `migrate` in production must run as the (unprivileged) owner.
// Production DBAs run the same statements once; see docs/runbook.md.
import pg from 'pg';

export interface BootstrapOptions {
  rootUrl: string;
  databases: string[];
  ownerPassword: string;
  authenticatorPassword: string;
  /** Password of app_worker, the job worker's login (never the owner). */
  workerPassword: string;
}

/** Role layout: the API logs in as `authenticator` and can only SET ROLE to these. */
const ROLES_SQL = `
do $$
declare
  r record;
begin
  for r in
    select * from (values
      ('app_owner',     'login'),
      -- NOINHERIT: the login itself holds no privileges until the API switches role.
      ('authenticator', 'login noinherit'),
      -- The job worker: EXECUTE on its tasks' functions and graphile-worker's
      -- schema only (sql/worker/grants.sql).
      ('app_worker',    'login'),
      ('app_anonymous', 'nologin'),
      ('app_user',      'nologin'),
      ('app_admin',     'nologin'),
      ('app_auditor',   'nologin')
    ) as roles(name, options)
  loop
    if not exists (select from pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, r.options);
    end if;
  end loop;
end
$$;
-- A signed-in user can do what a visitor can; an admin what a user can.
grant app_anonymous to app_user;
grant app_user to app_admin;
-- Auditors are people with their own login roles granted app_auditor; the API never becomes one.
grant app_anonymous, app_user, app_admin to authenticator;
`;

export async function bootstrapDatabase(options: BootstrapOptions): Promise<void> {
  const client = new pg.Client({ connectionString: options.rootUrl });
  await client.connect();
  try {
    await client.query(ROLES_SQL);
    await client.query(
      `alter role app_owner with login password ${client.escapeLiteral(options.ownerPassword)};
       alter role authenticator with login noinherit password ${client.escapeLiteral(options.authenticatorPassword)};
       alter role app_worker with login password ${client.escapeLiteral(options.workerPassword)}`,
    );
    for (const database of options.databases) {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
      const name = client.escapeIdentifier(database);
      if (!rowCount) await client.query(`create database ${name} owner app_owner`);
      await client.query(`revoke all on database ${name} from public`);
      await client.query(`grant connect on database ${name} to authenticator, app_worker`);
    }
  } finally {
    await client.end();
  }
}

/** Builds a URL for `user` on the same server as `url`. */
export function urlFor(url: string, user: string, password: string, database?: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  if (database) parsed.pathname = `/${database}`;
  return parsed.toString();
}

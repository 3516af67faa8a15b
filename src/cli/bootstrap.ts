// `npm run db:bootstrap`: creates the roles and the database on a server you
// run (once per cluster; safe to repeat). Needs ROOT_DATABASE_URL (a superuser)
// and takes the role passwords and database name from DATABASE_URL (owner)
// AUTH_DATABASE_URL (authenticator) and WORKER_DATABASE_URL (app_worker), so
// each secret is configured once.
import { bootstrapDatabase } from '../db/bootstrap.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { runCli } from './run-cli.ts';

await runCli(async () => {
  const config = loadConfig();
  if (!config.rootDatabaseUrl || !config.databaseUrl || !config.authDatabaseUrl) {
    throw new ConfigError('db:bootstrap needs ROOT_DATABASE_URL, DATABASE_URL and AUTH_DATABASE_URL.');
  }
  const owner = new URL(config.databaseUrl);
  const auth = new URL(config.authDatabaseUrl);
  if (decodeURIComponent(owner.username) !== 'app_owner' || decodeURIComponent(auth.username) !== 'authenticator') {
    throw new ConfigError('DATABASE_URL must log in as app_owner and AUTH_DATABASE_URL as authenticator.');
  }
  const database = decodeURIComponent(owner.pathname.slice(1));
  // app_worker's password from WORKER_DATABASE_URL (the worker's only connection).
  if (!config.workerDatabaseUrl || decodeURIComponent(new URL(config.workerDatabaseUrl).username) !== 'app_worker') {
    throw new ConfigError('db:bootstrap needs WORKER_DATABASE_URL, logging in as app_worker.');
  }
  await bootstrapDatabase({
    rootUrl: config.rootDatabaseUrl,
    databases: [database],
    ownerPassword: decodeURIComponent(owner.password),
    authenticatorPassword: decodeURIComponent(auth.password),
    workerPassword: decodeURIComponent(new URL(config.workerDatabaseUrl).password),
  });
  console.log(`roles and database "${database}" are in place`);
});

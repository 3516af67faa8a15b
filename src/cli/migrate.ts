// `npm run migrate`: applies every committed migration. In production set
// DATABASE_URL to the owner role; locally it uses the embedded PostgreSQL.
// Also installs or upgrades graphile-worker's schema and grants it to app_worker.
import { loadConfig } from '../config.ts';
import { connectOrStartLocalDatabase } from '../db/local.ts';
import { migrate } from '../db/migrate.ts';
import { makeLogger } from '../logger.ts';
import { installWorkerSchema } from '../worker/runner.ts';
import { runCli } from './run-cli.ts';

await runCli(async () => {
  const config = loadConfig();
  if (config.databaseUrl) {
    process.stdout.write(await migrate(config.databaseUrl));
    // graphile-worker's schema too, as the owner: the worker (app_worker) cannot create it.
    await installWorkerSchema(config.databaseUrl, makeLogger(config.logLevel));
    return;
  }
  const local = await connectOrStartLocalDatabase(config.dataDir, config.embeddedPgPort);
  try {
    process.stdout.write(await migrate(local.databaseUrl));
    await installWorkerSchema(local.databaseUrl, makeLogger(config.logLevel));
  } finally {
    await local.stop();
  }
});

// `npm run db:<x>`: graphile-migrate with connection strings filled in. With
// DATABASE_URL set it uses the environment as is; otherwise it reuses the
// embedded PostgreSQL of a running `npm start`, or starts it for the command.
import { loadConfig } from '../config.ts';
import { connectOrStartLocalDatabase } from '../db/local.ts';
import { graphileMigrateInteractive } from '../db/migrate.ts';
import { runCli } from './run-cli.ts';

await runCli(async () => {
  const config = loadConfig();
  const args = process.argv.slice(2);
  if (config.databaseUrl) {
    process.exitCode = await graphileMigrateInteractive(args, {
      databaseUrl: config.databaseUrl,
      shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL,
      rootDatabaseUrl: config.rootDatabaseUrl,
    });
    return;
  }
  const local = await connectOrStartLocalDatabase(config.dataDir, config.embeddedPgPort);
  try {
    process.exitCode = await graphileMigrateInteractive(args, local);
  } finally {
    await local.stop();
  }
});

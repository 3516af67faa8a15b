// `npm run migrate`: applies every committed migration. In production set
// DATABASE_URL to the owner role; locally it uses the embedded PostgreSQL.
import { loadConfig } from '../config.ts';
import { connectOrStartLocalDatabase } from '../db/local.ts';
import { migrate } from '../db/migrate.ts';
import { runCli } from './run-cli.ts';

await runCli(async () => {
  const config = loadConfig();
  if (config.databaseUrl) {
    process.stdout.write(await migrate(config.databaseUrl));
    return;
  }
  const local = await connectOrStartLocalDatabase(config.dataDir, config.embeddedPgPort);
  try {
    process.stdout.write(await migrate(local.databaseUrl));
  } finally {
    await local.stop();
  }
});

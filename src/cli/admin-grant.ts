// `npm run admin:grant -- <email>`: makes an existing user an admin. The only
// way to create the first admin (after that, one admin requests a role change and another approves it). It
// runs on the owner connection (DATABASE_URL, or the embedded PostgreSQL of
// `npm start`), which no API role can reach; the grant is written to the
// admin log as done by the CLI. The person signs in again to get admin rights.
import pg from 'pg';
import { ConfigError, loadConfig } from '../config.ts';
import { connectOrStartLocalDatabase } from '../db/local.ts';
import { runCli } from './run-cli.ts';

export async function grantAdmin(ownerUrl: string, email: string): Promise<string> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>('select app_private.grant_admin($1) as id', [email]);
    return rows[0].id;
  } catch (error) {
    if ((error as { code?: string }).code === 'PW308') throw new ConfigError(`No user has the email address ${email}; register first.`);
    throw error;
  } finally {
    await client.end();
  }
}

if (import.meta.main) {
  await runCli(async () => {
    const email = process.argv[2]?.trim();
    if (!email) throw new ConfigError('Usage: npm run admin:grant -- <email>');
    const config = loadConfig();
    const local = config.databaseUrl ? undefined : await connectOrStartLocalDatabase(config.dataDir, config.embeddedPgPort);
    try {
      const id = await grantAdmin(config.databaseUrl ?? local!.databaseUrl, email);
      console.log(`${email} (user ${id}) is an admin; their sessions were ended, so they sign in again to use it.`);
    } finally {
      await local?.stop();
    }
  });
}

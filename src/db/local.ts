// The local whole: an embedded PostgreSQL in the data folder with generated
// passwords, bootstrapped roles and databases. Used by `npm start` and the
// db:* scripts when DATABASE_URL is not set.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { bootstrapDatabase, urlFor } from './bootstrap.ts';
import { StartupError, startEmbeddedPostgres, type EmbeddedServer } from './embedded.ts';

export const LOCAL_DATABASE = 'pgwallet';

export interface LocalSecrets {
  superuserPassword: string;
  ownerPassword: string;
  authenticatorPassword: string;
  /** app_worker's password (added later: generated into older secrets files on first use). */
  workerPassword?: string;
  /** Ed25519 private JWK used to sign access tokens in development. */
  jwtPrivateJwk?: string;
  /** AES-256 key (base64) for bank account numbers in development (src/payments/local-keys.ts). */
  bankAccountEncryptionKey?: string;
}

export interface DatabaseUrls {
  databaseUrl: string;
  authDatabaseUrl: string;
  /** app_worker: the job worker's only connection. */
  workerDatabaseUrl: string;
  rootDatabaseUrl: string;
  shadowDatabaseUrl: string;
}

const secretsPath = (dataDir: string) => join(dataDir, 'secrets.json');

/** Secrets for the local cluster, created once and kept (mode 0600) in the data folder. */
export function loadLocalSecrets(dataDir: string): LocalSecrets {
  const path = secretsPath(dataDir);
  const secret = () => randomBytes(24).toString('base64url');
  if (existsSync(path)) {
    const existing = JSON.parse(readFileSync(path, 'utf8')) as LocalSecrets;
    if (existing.workerPassword) return existing;
    const upgraded = { ...existing, workerPassword: secret() };
    saveLocalSecrets(dataDir, upgraded);
    return upgraded;
  }
  const secrets = { superuserPassword: secret(), ownerPassword: secret(), authenticatorPassword: secret(), workerPassword: secret() };
  saveLocalSecrets(dataDir, secrets);
  return secrets;
}

export function saveLocalSecrets(dataDir: string, secrets: LocalSecrets): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(secretsPath(dataDir), JSON.stringify(secrets, null, 2), { mode: 0o600 });
}

export function localUrls(server: Pick<EmbeddedServer, 'url'>, secrets: LocalSecrets, database = LOCAL_DATABASE): DatabaseUrls {
  const root = server.url('postgres');
  return {
    rootDatabaseUrl: root,
    databaseUrl: urlFor(root, 'app_owner', secrets.ownerPassword, database),
    authDatabaseUrl: urlFor(root, 'authenticator', secrets.authenticatorPassword, database),
    workerDatabaseUrl: urlFor(root, 'app_worker', secrets.workerPassword ?? '', database),
    shadowDatabaseUrl: urlFor(root, 'app_owner', secrets.ownerPassword, `${database}_shadow`),
  };
}

export interface LocalDatabase extends DatabaseUrls {
  stop(): Promise<void>;
}

function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    accessSync(dataDir, constants.W_OK);
  } catch {
    throw new StartupError(`The data folder ${dataDir} is not writable by this user; fix its owner or set PGWALLET_DATA_DIR.`);
  }
}

export async function startLocalDatabase(dataDir: string, port: number): Promise<LocalDatabase> {
  ensureDataDir(dataDir);
  const secrets = loadLocalSecrets(dataDir);
  const server = await startEmbeddedPostgres({
    dir: join(dataDir, 'postgres'),
    port,
    superuserPassword: secrets.superuserPassword,
    durable: true,
  });
  const urls = localUrls(server, secrets);
  await bootstrapDatabase({
    rootUrl: urls.rootDatabaseUrl,
    databases: [LOCAL_DATABASE, `${LOCAL_DATABASE}_shadow`],
    ownerPassword: secrets.ownerPassword,
    authenticatorPassword: secrets.authenticatorPassword,
    workerPassword: secrets.workerPassword ?? '',
  });
  return { ...urls, stop: () => server.stop() };
}

/** For db:* scripts while `npm start` runs: reuse its server if it answers, else start one. */
export async function connectOrStartLocalDatabase(dataDir: string, port: number): Promise<LocalDatabase> {
  if (existsSync(join(dataDir, 'postgres', 'postmaster.pid')) && existsSync(secretsPath(dataDir))) {
    const secrets = loadLocalSecrets(dataDir);
    const urls = localUrls({ url: (db) => `postgres://postgres:${encodeURIComponent(secrets.superuserPassword)}@127.0.0.1:${port}/${db}` }, secrets);
    const probe = new pg.Client({ connectionString: urls.rootDatabaseUrl });
    try {
      await probe.connect();
      await probe.end();
      return { ...urls, stop: async () => undefined };
    } catch {
      // stale pid file: fall through and start our own
    }
  }
  return startLocalDatabase(dataDir, port);
}

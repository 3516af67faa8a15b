// What the benchmarks share: a durable PostgreSQL to measure against, and the
// API under test as its own process (so client and server do not share a CPU
// thread).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { freePort } from '../helpers/ports.ts';

/** BENCH_DATABASE_URL (a superuser URL) if set, else a fresh embedded PostgreSQL 18 with fsync on. */
export async function startBenchServer(): Promise<{ rootUrl: string; stop(): Promise<void>; kind: string }> {
  if (process.env.BENCH_DATABASE_URL) return { rootUrl: process.env.BENCH_DATABASE_URL, stop: async () => undefined, kind: 'BENCH_DATABASE_URL' };
  const dir = mkdtempSync(join(tmpdir(), 'pgwallet-bench-'));
  const server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port: await freePort(), superuserPassword: 'bench', durable: true });
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
 * line, `{"url": …}`. BENCH_API_CPU_PROFILE=<dir> writes a V8 CPU profile there.
 */
export async function startApiProcess(script: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const profile = process.env.BENCH_API_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_CPU_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, script], {
    env: { ...process.env, NODE_ENV: 'production', GRAPHILE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`API process exited with ${code}`)));
  });
  return { url: JSON.parse(line).url, child };
}

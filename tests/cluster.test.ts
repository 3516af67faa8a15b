// WEB_CONCURRENCY > 1: `npm start` against your own PostgreSQL runs that many
// API processes on one port (node cluster); connections are spread over them,
// and SIGTERM stops them all.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { freePort } from './helpers/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'pgwallet-cluster-'));
chmodSync(dir, 0o711);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WEB_CONCURRENCY', () => {
  it('serves one port from two processes and stops them all on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['src/main.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        DATABASE_URL: inject('ownerUrl'),
        AUTH_DATABASE_URL: inject('authUrl'),
        IN_PROCESS_WORKER: 'false',
        PGWALLET_DATA_DIR: dir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while ((stdout.match(/pgwallet is ready/g) ?? []).length < 2) {
        if (Date.now() > deadline) throw new Error(`not ready:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // A new connection per request: the primary hands connections out in turn.
      for (let i = 0; i < 12; i++) {
        const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ query: '{ __typename }' }),
        });
        expect(response.status).toBe(200);
      }
      await new Promise((r) => setTimeout(r, 300));
      const pids = new Set(
        stdout
          .split('\n')
          .filter((line) => line.includes('"req"') && line.includes('/graphql'))
          .map((line) => JSON.parse(line).pid),
      );
      expect(pids.size).toBe(2);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});

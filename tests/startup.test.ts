// `npm start` as a new user runs it: a real process, embedded PostgreSQL in a
// fresh data folder, data kept across restarts, and one clear sentence (not a
// stack trace) for each way start-up can fail.
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/ports.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgwallet-start-'));
  chmodSync(dir, 0o711); // PostgreSQL runs as the postgres user when tests run as root
  dirs.push(dir);
  return dir;
}


interface Started {
  exit: Promise<{ code: number | null; stderr: string; stdout: string }>;
  ready: Promise<string>;
  stop(): void;
}

function start(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ['src/main.ts'], {
    env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onReady: (line: string) => void;
  const ready = new Promise<string>((resolve) => (onReady = resolve));
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    const line = stdout.split('\n').find((l) => l.startsWith('pgwallet is ready'));
    if (line) onReady(line);
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr, stdout })),
  );
  return { exit, ready, stop: () => child.kill('SIGTERM') };
}

async function graphql(url: string, query: string, variables: object) {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await response.json()) as { data?: any; errors?: unknown[] };
}

describe('npm start', () => {
  it('starts on a fresh data folder, prints the URL, and keeps users across a restart', async () => {
    const env = { PGWALLET_DATA_DIR: join(tempDir(), 'data'), PORT: String(await freePort()), EMBEDDED_PG_PORT: String(await freePort()) };
    const first = start(env);
    const line = await first.ready;
    const url = /GraphQL at (\S+)\/graphql/.exec(line)![1];
    const email = `persist-${Date.now()}@example.com`;
    const registered = await graphql(url, 'mutation($i: RegisterInput!) { register(input: $i) { user { rowId } } }', {
      i: { email, password: 'correct horse battery', fullName: 'Persistent Pat' },
    });
    expect(registered.data.register.user.rowId).toBeTruthy();
    first.stop();
    expect((await first.exit).code).toBe(0);

    const second = start(env);
    await second.ready;
    const login = await graphql(url, 'mutation($i: LoginInput!) { login(input: $i) { user { rowId fullName } } }', {
      i: { email, password: 'correct horse battery' },
    });
    expect(login.data.login.user).toEqual({ rowId: registered.data.register.user.rowId, fullName: 'Persistent Pat' });
    second.stop();
    expect((await second.exit).code).toBe(0);
  }, 60_000);
});

describe('start-up errors are one clear sentence and a non-zero exit', () => {
  const expectOneSentence = (result: { code: number | null; stderr: string }, pattern: RegExp) => {
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(pattern);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  };

  it('when the PostgreSQL port is taken', async () => {
    const blocker: Server = await new Promise((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await start({ PGWALLET_DATA_DIR: join(tempDir(), 'data'), EMBEDDED_PG_PORT: String(port), PORT: String(await freePort()) }).exit;
      expectOneSentence(result, new RegExp(`^pgwallet: Port ${port} is already in use.*EMBEDDED_PG_PORT`));
    } finally {
      blocker.close();
    }
  });

  it('when the API port is taken', async () => {
    const blocker: Server = await new Promise((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await start({ PGWALLET_DATA_DIR: join(tempDir(), 'data'), EMBEDDED_PG_PORT: String(await freePort()), PORT: String(port) }).exit;
      expectOneSentence(result, new RegExp(`^pgwallet: Port ${port} is already in use, so the API cannot listen`));
    } finally {
      blocker.close();
    }
  }, 30_000);

  it('when the database folder belongs to someone else', async () => {
    const data = join(tempDir(), 'data');
    mkdirSync(data, { recursive: true });
    // As root we can hand the folder to a stranger; otherwise point it at one of root's.
    const stranger = process.getuid?.() === 0 ? 12345 : 0;
    if (stranger) {
      mkdirSync(join(data, 'postgres'));
      chownSync(join(data, 'postgres'), stranger, stranger);
    } else {
      symlinkSync('/', join(data, 'postgres'));
    }
    const result = await start({ PGWALLET_DATA_DIR: data, EMBEDDED_PG_PORT: String(await freePort()), PORT: String(await freePort()) }).exit;
    expectOneSentence(result, new RegExp(`^pgwallet: The database folder .* is owned by uid ${stranger},`));
  });

  it('when the server refuses to start (incompatible data folder)', async () => {
    const data = join(tempDir(), 'data');
    const cluster = join(data, 'postgres');
    mkdirSync(cluster, { recursive: true });
    writeFileSync(join(cluster, 'PG_VERSION'), '9\n');
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      chownSync(cluster, uid, uid);
      chownSync(join(cluster, 'PG_VERSION'), uid, uid);
    }
    const result = await start({ PGWALLET_DATA_DIR: data, EMBEDDED_PG_PORT: String(await freePort()), PORT: String(await freePort()) }).exit;
    expectOneSentence(result, /^pgwallet: The embedded PostgreSQL in .* would not start: .+\.\n?$/);
  });
});

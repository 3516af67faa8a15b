// Issue 9 §5: in production pgwallet refuses to start with sandbox Revio or
// the example bank key, as real processes (`npm start`, `npm run worker`)
// started the way a deployment would start them, and as the functions behind.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { generatePrivateJwk } from '../src/auth/keys.ts';
import { generateBankAccountKey } from '../src/payments/bank-crypto.ts';
import { bankAccountKeyFor, EXAMPLE_BANK_ACCOUNT_KEY } from '../src/payments/local-keys.ts';
import { assertProductionRevio } from '../src/revio-wiring.ts';
import { freePort } from './helpers/ports.ts';

const REAL = { REVIO_API_KEY: 'live-key-from-revio', REVIO_BRAND_ID: '0b6f3c9e-8a51-4d2b-9e77-3f1a2c4d5e6f' };

function run(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  // Only what a deployment sets: no inherited REVIO_* or database settings from the test run.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REVIO_|DATABASE_URL|AUTH_DATABASE_URL|WORKER_DATABASE_URL|BANK_)/.test(k)));
  const child = spawn(process.execPath, [script], { env: { ...base, LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  // Generous: on a loaded machine loading the sources alone can take many seconds.
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => child.on('exit', (code) => (clearTimeout(timer), resolve({ code, output }))));
}

async function productionEnv(extra: Record<string, string> = {}) {
  return {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    // Nothing listens here: start-up must stop before it would connect.
    AUTH_DATABASE_URL: 'postgres://authenticator:x@127.0.0.1:1/pgwallet',
    WORKER_DATABASE_URL: 'postgres://app_worker:x@127.0.0.1:1/pgwallet',
    JWT_PRIVATE_JWK: await generatePrivateJwk(),
    BANK_ACCOUNT_ENCRYPTION_KEY: generateBankAccountKey(),
    ...extra,
  };
}

// Each case starts real Node processes: allow for a loaded machine.
describe('production refuses sandbox Revio and the example bank key', { timeout: 120_000 }, () => {
  it('npm start refuses to start without real Revio settings (no in-process sandbox)', async () => {
    const { code, output } = await run('src/main.ts', await productionEnv());
    expect(code).not.toBe(0);
    expect(output).toMatch(/REVIO_API_KEY and REVIO_BRAND_ID are required/);
    expect(output).not.toMatch(/Revio sandbox at/);
  });

  it('npm start refuses the sandbox\'s published credentials unless REVIO_ALLOW_SANDBOX=true', async () => {
    const sandbox = { REVIO_API_KEY: 'revio-sandbox-secret-key', REVIO_BRAND_ID: '2f8e9a4c-5b1d-4e7a-9c3f-0d6b8a1e7c55' };
    const { code, output } = await run('src/main.ts', await productionEnv(sandbox));
    expect(code).not.toBe(0);
    expect(output).toMatch(/sandbox's published credentials/);
    expect(() => assertProductionRevio({ NODE_ENV: 'production', ...sandbox, REVIO_ALLOW_SANDBOX: 'true' })).not.toThrow();
    expect(() => assertProductionRevio({ NODE_ENV: 'production', ...REAL })).not.toThrow();
    expect(() => assertProductionRevio({ NODE_ENV: 'development' })).not.toThrow();
  });

  it('npm start and npm run worker refuse the example bank key from .env.example', async () => {
    const scripts = ['src/main.ts', 'src/worker/main.ts'];
    const runs = await Promise.all(scripts.map(async (script) => run(script, await productionEnv({ ...REAL, BANK_ACCOUNT_ENCRYPTION_KEY: EXAMPLE_BANK_ACCOUNT_KEY }))));
    runs.forEach(({ code, output }, i) => {
      expect(code, scripts[i]).not.toBe(0);
      expect(output, scripts[i]).toMatch(/example from \.env\.example/);
    });
    // The same bytes in hex too; outside production the example still works (local demos).
    const hex = Buffer.from(EXAMPLE_BANK_ACCOUNT_KEY, 'base64').toString('hex');
    expect(() => bankAccountKeyFor({ env: 'production', dataDir: '/nonexistent' }, { BANK_ACCOUNT_ENCRYPTION_KEY: hex })).toThrow(/example/);
    expect(() => bankAccountKeyFor({ env: 'development', dataDir: '/nonexistent' }, { BANK_ACCOUNT_ENCRYPTION_KEY: EXAMPLE_BANK_ACCOUNT_KEY })).not.toThrow();
  });

  it('npm run worker needs its own role\'s URL, not the owner\'s', async () => {
    const env = await productionEnv(REAL);
    const { WORKER_DATABASE_URL: _unused, ...withoutWorker } = env;
    const { code, output } = await run('src/worker/main.ts', { ...withoutWorker, DATABASE_URL: 'postgres://app_owner:x@127.0.0.1:1/pgwallet' });
    expect(code).not.toBe(0);
    expect(output).toMatch(/WORKER_DATABASE_URL \(the app_worker role; never the owner\)/);
  });
});

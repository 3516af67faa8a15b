// The short fault run (issue 6, docs/faults.md) inside `npm test`: PostgreSQL,
// the Revio sandbox, the API and the worker as separate processes, faults on a
// schedule, then the bank invariants. Never skipped; a fixed seed, so a
// failure names the seed that reproduces it (`npm run test:faults -- --short --seed <n>`).
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';

it('short fault run: no money created, lost or paid out twice under crashes and outages', async () => {
  const seed = process.env.FAULTS_SEED ?? '20261122';
  const child = spawn(process.execPath, ['tests/faults/run.ts', '--short', '--quiet', '--seed', seed], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) console.log(output);
  expect(output).toMatch(/OK: no violations/);
  expect(code).toBe(0);
}, 600_000);

// `npm run test:faults [-- --minutes N --seed S --users U --concurrency C --short --keep]`:
// the fault-injection run of docs/faults.md. Exits 1 on any violation and
// prints the seed that reproduces it.
import { parseArgs } from 'node:util';
import { runFaults } from './harness.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    users: { type: 'string' },
    concurrency: { type: 'string' },
    'fault-every': { type: 'string' },
    'fuzz-cases': { type: 'string' },
    short: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});

// An idle connection of a library's pool (the bootstrap's) told that PostgreSQL
// shut down (57P01) is expected here; anything else still crashes the run.
process.on('uncaughtException', (error: Error & { code?: string }) => {
  if (error.code === '57P01') return void console.log(`ignored on an idle pool connection: ${error.message}`);
  throw error;
});

const short = values.short;
const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const durationMs = values.minutes ? Number(values.minutes) * 60_000 : values.seconds ? Number(values.seconds) * 1000 : short ? 25_000 : 60_000;
const result = await runFaults({
  seed,
  users: Number(values.users ?? (short ? 24 : 300)),
  concurrency: Number(values.concurrency ?? (short ? 8 : 24)),
  durationMs,
  faultEveryMs: Number(values['fault-every'] ?? (short ? 500 : 5_000)),
  settleTimeoutMs: short ? 240_000 : 300_000,
  fuzzCases: Number(values['fuzz-cases'] ?? (short ? 150 : 600)),
  minimumPerKind: short ? 10 : 50,
  verbose: !values.quiet,
  keepDir: values.keep,
  log: (line) => console.log(line),
});
console.log(result.report);
process.exit(result.ok ? 0 : 1);

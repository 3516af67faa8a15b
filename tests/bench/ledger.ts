// `npm run bench:ledger` — the ledger benchmark (not part of `npm test`).
//
// Fair by construction: the baseline and the SQL cases use the same client
// (pgbench's C client, `-M prepared`), the same database, the same number of
// clients and one round trip per statement; the cases are interleaved and
// repeated (BENCH_ROUNDS, at least 3), and the median and spread are reported.
//   a.  baseline      pgbench's built-in `tpcb-like` (BEGIN, 5 statements, END)
//   b.  sql           a wallet-to-wallet transfer: one statement calling
//                     app_private.transfer (validation, idempotency record,
//                     balanced entry, 2 postings, 2 balances)
//   c.  graphql       the same through the GraphQL `transfer` mutation over
//                     HTTP with real JWTs, rate limits on (production code
//                     path, limits set above the load), info-level logging,
//                     the API in its own process(es) (node-driven client)
//   d.  hot           every transaction pays a fee to one logical account
//                     (app_private.pay_fee → the fees account, sharded per
//                     backend by ledger.system_account, 16 shards)
//   ds. hot, spread   the same operation with ledger.system_shards = 256, so
//                     clients almost never share a fees row: what the hot
//                     case would do without a hot account (target d ≥ 0.8 ds)
//   d0. hot, 1 shard  the same with ledger.system_shards = 1: what sharding buys
// At the end the ledger's invariants are checked (trial balance, drift,
// unbalanced entries, negative wallets) and the run fails if any is off or any
// transaction failed. Writes tests/bench/results/ledger.json with the machine's
// load average: on a shared machine compare ratios within one run.
//
// Needs pgbench (PostgreSQL's client package: `apt-get install postgresql-client`),
// found as $PGBENCH, /usr/lib/postgresql/*/bin/pgbench or on PATH.
//
// Settings: BENCH_CLIENTS (16), BENCH_SECONDS (10 per case and round),
// BENCH_ROUNDS (3), BENCH_WALLETS (50), BENCH_WARMUP_SECONDS (2, not counted),
// BENCH_HISTORY (20000 transfers written before measuring), BENCH_SCALE (pgbench
// scale factor, default = clients, as pgbench recommends), BENCH_CASES
// (a,b,c,d,ds,d0), BENCH_WEB_CONCURRENCY (API processes for case c, 1),
// BENCH_DATABASE_URL (a superuser URL; default: a fresh embedded PostgreSQL 18
// with fsync on in a temporary folder).
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { signAccessToken } from '../../src/auth/tokens.ts';
import { graphileMigrate, migrate } from '../../src/db/migrate.ts';
import { freshBenchDatabase, startApiProcess, startBenchServer } from './harness.ts';
import { connect, envNumber, percentile, round } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENTS = envNumber('BENCH_CLIENTS', 16);
const SECONDS = envNumber('BENCH_SECONDS', 10);
const ROUNDS = Math.max(1, envNumber('BENCH_ROUNDS', 3));
const WALLETS = envNumber('BENCH_WALLETS', 50);
const WARMUP = envNumber('BENCH_WARMUP_SECONDS', 2);
const SCALE = envNumber('BENCH_SCALE', CLIENTS);
const WEB_CONCURRENCY = envNumber('BENCH_WEB_CONCURRENCY', 1);
const CASES = new Set((process.env.BENCH_CASES ?? 'a,b,c,d,ds,d0').split(','));
const DATABASE = 'pgwallet_bench';
const HISTORY = envNumber('BENCH_HISTORY', 20_000);

interface CaseResult {
  tps: number;
  p50_ms: number;
  p99_ms: number;
  done: number;
  failed: number;
  errors: string[];
}

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function findPgbench(): string {
  const candidates = [process.env.PGBENCH ?? ''];
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) candidates.push(`/usr/lib/postgresql/${v}/bin/pgbench`);
  }
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('pgbench not found: install PostgreSQL\'s client package (Debian/Ubuntu: `apt-get install postgresql-client`) or set PGBENCH.');
  }
}

/** Set in main: a superuser connection, to start every case from a checkpoint. */
let superuser: pg.Client | undefined;
let pgbench = '';
let workDir = '';

/**
 * One pgbench run: `-M prepared`, CLIENTS clients on 2 threads, WARMUP + SECONDS;
 * transactions are counted from the per-transaction log, warm-up excluded.
 */
async function runPgbench(name: string, url: string, script: string[], env: Record<string, string> = {}): Promise<CaseResult> {
  await superuser?.query('checkpoint');
  const prefix = join(workDir, `${name.replace(/\W+/g, '_')}-${randomUUID().slice(0, 8)}`);
  const args = ['-n', '-M', 'prepared', '-c', String(CLIENTS), '-j', '2', '-T', String(WARMUP + SECONDS), '-l', `--log-prefix=${prefix}`, ...script, url];
  process.stdout.write(`  ${name}: pgbench ${WARMUP} s warm-up + ${SECONDS} s with ${CLIENTS} clients… `);
  const { code, stderr, stdout } = await new Promise<{ code: number; stderr: string; stdout: string }>((resolve) => {
    const child = spawn(pgbench, args, { env: { ...process.env, ...env }, cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (c) => resolve({ code: c ?? 1, stderr: err, stdout: out }));
  });
  // Log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
  const rows: [number, number][] = [];
  for (const file of readdirSync(workDir).filter((f) => f.startsWith(prefix.slice(workDir.length + 1)))) {
    for (const line of readFileSync(join(workDir, file), 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f.length < 6) continue;
      rows.push([Number(f[4]) + Number(f[5]) / 1e6, f[2] === 'failed' ? -1 : Number(f[2]) / 1000]);
    }
    rmSync(join(workDir, file));
  }
  let start = Infinity;
  for (const [t] of rows) start = Math.min(start, t);
  const measureFrom = start + WARMUP;
  const counted = rows.filter(([t]) => t >= measureFrom && t < measureFrom + SECONDS);
  const latencies = Float64Array.from(counted.filter(([, l]) => l >= 0).map(([, l]) => l)).sort();
  const aborted = /aborted|error/i.test(stderr) || code !== 0;
  const failedLine = /number of failed transactions: (\d+)/.exec(stdout);
  const failed = (failedLine ? Number(failedLine[1]) : 0) + counted.filter(([, l]) => l < 0).length + (aborted ? 1 : 0);
  const result: CaseResult = {
    tps: round(latencies.length / SECONDS, 1),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    done: latencies.length,
    failed,
    errors: aborted ? stderr.split('\n').filter((l) => /error|abort/i.test(l)).slice(0, 3) : [],
  };
  console.log(`${result.tps} tx/s${failed ? ` (${failed} failed)` : ''}`);
  return result;
}

/** The node-driven case (GraphQL over HTTP): CLIENTS loops, each one request at a time. */
async function runNodeCase(name: string, op: () => Promise<void>): Promise<CaseResult> {
  await superuser?.query('checkpoint');
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  process.stdout.write(`  ${name}: node client ${WARMUP} s warm-up + ${SECONDS} s with ${CLIENTS} clients… `);
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await op();
          const t1 = performance.now();
          if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
        } catch (error) {
          if (t0 >= measureFrom) {
            failed += 1;
            const message = (error as Error).message.slice(0, 120);
            errors.set(message, (errors.get(message) ?? 0) + 1);
          }
        }
      }
    }),
  );
  const sorted = Float64Array.from(latencies).sort();
  const result = {
    tps: round(latencies.length / SECONDS, 1),
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    done: latencies.length,
    failed,
    errors: [...errors].map(([message, count]) => `${count}× ${message}`),
  };
  console.log(`${result.tps} tx/s${failed ? ` (${failed} failed)` : ''}`);
  return result;
}

interface Wallet {
  userId: string;
  walletId: string;
  email: string;
  token: string;
}

/**
 * BENCH_WALLETS users with a funded ZAR wallet, and a `bench_wallets` table
 * (i → user, wallet, email) for the pgbench scripts, which pick by number.
 */
async function createWallets(db: pg.Client, jwk: string): Promise<Wallet[]> {
  const keys = await loadSigningKeys(jwk);
  const tokens = { keys, issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 3600 };
  const wallets: Wallet[] = [];
  await db.query(`create table bench_wallets (i int primary key, user_id uuid not null, wallet_id uuid not null, email text not null)`);
  for (let i = 0; i < WALLETS; i++) {
    const email = `bench-${i}-${randomUUID().slice(0, 8)}@example.com`;
    // Users are inserted directly (no bcrypt); the trigger opens their ZAR wallet.
    const user = (await db.query(`insert into app_public.users (email, full_name, email_verified_at) values ($1, $2, now()) returning id`, [email, `Bench ${i}`])).rows[0];
    const session = (await db.query(`select session_id from app_private.start_session((select u from app_public.users u where u.id = $1))`, [user.id])).rows[0]
      .session_id;
    const walletId = (await db.query(`select ledger.open_wallet($1, 'ZAR') as id`, [user.id])).rows[0].id;
    await db.query(`select ledger.move('deposit', ledger.system_account('revio_clearing', 'ZAR'), $1, 1000000000000, 'bench funds')`, [walletId]);
    await db.query(`insert into bench_wallets values ($1, $2, $3, $4)`, [i + 1, user.id, walletId, email]);
    const token = (await signAccessToken(tokens, { userId: user.id, role: 'app_user', sessionId: session })).token;
    wallets.push({ userId: user.id, walletId, email, token });
  }
  return wallets;
}

/**
 * A ledger with some history, as any real one has. On empty tables PostgreSQL
 * plans the ledger functions' lookups as sequential scans, and sessions keep
 * those plans while the tables grow.
 */
async function writeHistory(db: pg.Client, wallets: Wallet[]): Promise<void> {
  for (let batch = 0; batch < HISTORY / 1000; batch++) {
    const pairs = Array.from({ length: 1000 }, () => twoWallets(wallets));
    await db.query(
      `select count(app_private.transfer(f.u, f.w, f.e, 1, f.k)) from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) f(u, w, e, k)`,
      [pairs.map(([a]) => a.userId), pairs.map(([a]) => a.walletId), pairs.map(([, b]) => b.email), pairs.map(() => randomUUID())],
    );
  }
}

function twoWallets(wallets: Wallet[]): [Wallet, Wallet] {
  const from = pick(wallets);
  let to = pick(wallets);
  while (to === from) to = pick(wallets);
  return [from, to];
}

/** pgbench scripts: one statement per transaction, as a client would send it. */
function writeScripts(): { transfer: string; payFee: string } {
  const transfer = join(workDir, 'transfer.sql');
  writeFileSync(
    transfer,
    [
      `\\set i random(1, ${WALLETS})`,
      `\\set j 1 + (:i + random(0, ${WALLETS - 2})) % ${WALLETS}`,
      `\\set amount random(1, 100)`,
      `select (app_private.transfer(f.user_id, f.wallet_id, t.email, :amount, gen_random_uuid()::text)).id from bench_wallets f, bench_wallets t where f.i = :i and t.i = :j;`,
      '',
    ].join('\n'),
  );
  const payFee = join(workDir, 'pay_fee.sql');
  writeFileSync(
    payFee,
    [
      `\\set i random(1, ${WALLETS})`,
      `\\set amount random(1, 100)`,
      `select app_private.pay_fee(f.user_id, f.wallet_id, :amount, gen_random_uuid()::text) from bench_wallets f where f.i = :i;`,
      '',
    ].join('\n'),
  );
  return { transfer, payFee };
}

function graphqlCase(apiUrl: string, wallets: Wallet[]): { op: () => Promise<void>; close(): void } {
  const mutation = 'mutation($input: TransferInput!) { transfer(input: $input) { result { rowId amount createdAt } } }';
  // A plain keep-alive HTTP client (one socket per client): the load generator
  // shares the cores with the API and PostgreSQL, so it should cost little.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const endpoint = new URL(`${apiUrl}/graphql`);
  const post = (body: string, token: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        endpoint,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            authorization: `Bearer ${token}`,
            'content-length': Buffer.byteLength(body),
          },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  return {
    async op() {
      const [from, to] = twoWallets(wallets);
      const body = JSON.stringify({
        query: mutation,
        variables: { input: { fromWalletId: from.walletId, toEmail: to.email, amount: String(1 + Math.floor(Math.random() * 100)), idempotencyKey: randomUUID() } },
      });
      const response = await post(body, from.token);
      const result = JSON.parse(response.text) as { data?: { transfer?: { result?: unknown } }; errors?: { message: string }[] };
      if (!result.data?.transfer?.result) throw new Error(result.errors?.[0]?.message ?? `HTTP ${response.status}`);
    },
    close: () => agent.destroy(),
  };
}

const LABELS: Record<string, string> = {
  baseline: 'a.  pgbench TPC-B-like (baseline)',
  sql: 'b.  SQL transfer (pgbench)',
  graphql: 'c.  GraphQL transfer (HTTP, JWT)',
  hot: 'd.  hot: fee to one account, 16 shards',
  hot_spread: 'ds. same op, spread (256 shards)',
  hot_one_shard: 'd0. same op, 1 shard',
};

async function main() {
  pgbench = findPgbench();
  const pgbenchVersion = execFileSync(pgbench, ['--version'], { encoding: 'utf8' }).trim();
  workDir = mkdtempSync(join(tmpdir(), 'pgwallet-pgbench-'));
  const server = await startBenchServer();
  let api: ChildProcess | undefined;
  try {
    const { ownerUrl, authUrl } = await freshBenchDatabase(server.rootUrl, DATABASE);
    const rootDb = new URL(server.rootUrl);
    rootDb.pathname = `/${DATABASE}`;
    await migrate(ownerUrl);
    await graphileMigrate(['watch', '--once'], { databaseUrl: ownerUrl }); // work in progress, if any

    const setup = await connect(ownerUrl);
    const settings = (
      await setup.query(
        `select name, setting || coalesce(unit, '') as setting from pg_settings
          where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'min_wal_size', 'max_connections', 'server_version') order by name`,
      )
    ).rows;
    console.log(`pgwallet ledger benchmark: ${server.kind}; ${settings.map((s) => `${s.name}=${s.setting}`).join(', ')}; ${pgbenchVersion}`);
    console.log(`  ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s per case (+${WARMUP} s warm-up), ${WALLETS} wallets, pgbench scale ${SCALE}; setting up…`);
    execFileSync(pgbench, ['-i', '-q', '-I', 'dtGvp', '-s', String(SCALE), ownerUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
    const jwk = await generatePrivateJwk();
    const wallets = await createWallets(setup, jwk);
    await writeHistory(setup, wallets);
    await setup.query('vacuum analyze');
    superuser = await connect(rootDb.toString());
    const scripts = writeScripts();
    const apiProcess = await startApiProcess(join(here, 'api-server.ts'), {
      BENCH_AUTH_URL: authUrl,
      BENCH_JWK: jwk,
      BENCH_CLIENTS: String(CLIENTS),
      WEB_CONCURRENCY: String(WEB_CONCURRENCY),
    });
    api = apiProcess.child;
    const graphql = graphqlCase(apiProcess.url, wallets);

    const loadBefore = loadavg();
    const cases: [string, string, () => Promise<CaseResult>][] = [
      ['a', 'baseline', () => runPgbench('a', ownerUrl, ['-b', 'tpcb-like'])],
      ['b', 'sql', () => runPgbench('b', ownerUrl, ['-f', scripts.transfer])],
      ['c', 'graphql', () => runNodeCase('c', graphql.op)],
      ['d', 'hot', () => runPgbench('d', ownerUrl, ['-f', scripts.payFee], { PGOPTIONS: '-c ledger.system_shards=16' })],
      ['ds', 'hot_spread', () => runPgbench('ds', ownerUrl, ['-f', scripts.payFee], { PGOPTIONS: '-c ledger.system_shards=256' })],
      ['d0', 'hot_one_shard', () => runPgbench('d0', ownerUrl, ['-f', scripts.payFee], { PGOPTIONS: '-c ledger.system_shards=1' })],
    ];
    const rounds: Record<string, CaseResult[]> = {};
    for (let r = 1; r <= ROUNDS; r++) {
      console.log(`round ${r} of ${ROUNDS} (load average ${loadavg()[0].toFixed(2)})`);
      for (const [letter, key, run] of cases) {
        if (!CASES.has(letter)) continue;
        (rounds[key] ??= []).push(await run());
      }
    }
    graphql.close();
    const loadAfter = loadavg();

    const health = (
      await setup.query(`select (select count(*)::int from audit.trial_balance where net_balance <> 0) as unbalanced_currencies,
                                (select count(*)::int from audit.balance_drift) as drifting_accounts,
                                (select count(*)::int from audit.unbalanced_entries) as unbalanced_entries,
                                (select count(*)::int from ledger.accounts where kind = 'user_wallet' and balance - held < 0) as negative_wallets,
                                (select shards::int from audit.system_balances where kind = 'fees' and currency = 'ZAR') as fee_shards`)
    ).rows[0];
    await setup.end();
    await superuser.end();

    const summary = Object.fromEntries(
      Object.entries(rounds).map(([key, rs]) => {
        const tps = rs.map((r) => r.tps);
        return [
          key,
          {
            tps_median: round(median(tps), 1),
            tps_min: Math.min(...tps),
            tps_max: Math.max(...tps),
            spread_pct: round((100 * (Math.max(...tps) - Math.min(...tps))) / median(tps), 1),
            p50_ms_median: round(median(rs.map((r) => r.p50_ms))),
            p99_ms_median: round(median(rs.map((r) => r.p99_ms))),
            failed: rs.reduce((s, r) => s + r.failed, 0),
            rounds: rs.map((r) => ({ tps: r.tps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, failed: r.failed })),
            errors: rs.flatMap((r) => r.errors).slice(0, 5),
          },
        ];
      }),
    );
    const m = (key: string) => summary[key]?.tps_median ?? NaN;
    const ratios = {
      sql_vs_baseline: round(m('sql') / m('baseline')),
      graphql_vs_sql: round(m('graphql') / m('sql')),
      hot_vs_spread: round(m('hot') / m('hot_spread')),
      one_shard_vs_spread: round(m('hot_one_shard') / m('hot_spread')),
    };
    const failed = Object.values(summary).reduce((s, r) => s + r.failed, 0);

    console.log('');
    console.log(`case                                       median tx/s   (min–max, spread)      p50 ms  p99 ms  failed`);
    for (const [key, r] of Object.entries(summary)) {
      console.log(
        `${LABELS[key].padEnd(42)} ${String(r.tps_median).padStart(9)}   (${r.tps_min}–${r.tps_max}, ${r.spread_pct} %)`.padEnd(84) +
          `${String(r.p50_ms_median).padStart(7)} ${String(r.p99_ms_median).padStart(7)} ${String(r.failed).padStart(7)}`,
      );
      for (const e of r.errors.slice(0, 3)) console.log(`    ${e}`);
    }
    console.log('');
    console.log(`ratios (medians): b/a  sql vs baseline      = ${ratios.sql_vs_baseline}   (target >= 1.0)`);
    console.log(`                  c/b  graphql vs sql       = ${ratios.graphql_vs_sql}   (target >= 0.5)`);
    console.log(`                  d/ds hot vs spread        = ${ratios.hot_vs_spread}   (target >= 0.8)`);
    console.log(`                  d0/ds one shard vs spread = ${ratios.one_shard_vs_spread}   (what sharding buys)`);
    console.log(`failed transactions: ${failed}`);
    console.log(`machine load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')} on ${availableParallelism()} cores`);
    console.log(
      `ledger after the run: ${health.unbalanced_currencies} unbalanced currencies, ${health.drifting_accounts} drifting accounts, ${health.unbalanced_entries} unbalanced entries, ${health.negative_wallets} negative wallets; fees account in ${health.fee_shards} shards`,
    );

    const output = {
      clients: CLIENTS,
      seconds_per_case: SECONDS,
      warmup_seconds: WARMUP,
      rounds: ROUNDS,
      wallets: WALLETS,
      pgbench_scale: SCALE,
      pgbench: pgbenchVersion,
      web_concurrency: WEB_CONCURRENCY,
      server: server.kind,
      server_settings: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
      cases: summary,
      ratios,
      failed,
      ledger_health: health,
      load_average_before: loadBefore,
      load_average_after: loadAfter,
      cores: availableParallelism(),
      finished_at: new Date().toISOString(),
    };
    const path = join(here, 'results', process.env.BENCH_RESULT_NAME ?? 'ledger.json');
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(output, null, 2)}\n`);
    console.log(`written to ${path}`);
    const healthy = health.unbalanced_currencies === 0 && health.drifting_accounts === 0 && health.unbalanced_entries === 0 && health.negative_wallets === 0;
    if (failed > 0 || !healthy) {
      console.error(`FAILED: ${failed} failed transactions; ledger ${healthy ? 'healthy' : 'NOT healthy'}`);
      process.exitCode = 1;
    }
  } finally {
    if (api && api.exitCode === null) {
      const exited = new Promise((resolve) => api!.once('exit', resolve));
      api.kill('SIGTERM');
      await exited;
    }
    await server.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();

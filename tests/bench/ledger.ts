// `npm run bench:ledger` — the ledger benchmark (not part of `npm test`).
//
// One PostgreSQL with fsync on, one run, the same Node driver (node-pg) and the
// same number of clients for every case:
//   a. baseline     pgbench's TPC-B-like transaction (its 5 statements between
//                   BEGIN and END) on pgbench-shaped tables created here
//   b. sql          a wallet-to-wallet transfer through app_private.transfer
//                   (validation, idempotency record, balanced entry, 2 postings)
//   c. graphql      the same through the GraphQL `transfer` mutation over HTTP,
//                   with real JWTs, against the API in its own process
//   d. hot          every transaction credits one system account (fees), which
//                   is sharded per backend (ledger.system_account)
//   d0. hot, 1 shard  the same with ledger.system_shards = 1, to show what the
//                   sharding buys (BENCH_UNSHARDED=0 skips it)
// Prints transactions/s, p50/p99 latency and the ratios, and writes
// tests/bench/results/ledger.json.
//
// Settings: BENCH_CLIENTS (16), BENCH_SECONDS (15 per case), BENCH_WALLETS (50),
// BENCH_WARMUP_SECONDS (2, not counted), BENCH_HISTORY (20000 transfers written
// before measuring, so the ledger is not empty), BENCH_SCALE (pgbench scale factor,
// default = clients, as pgbench recommends), BENCH_UNSHARDED (1),
// BENCH_DATABASE_URL (a superuser URL; default: a fresh embedded PostgreSQL 18
// with fsync on in a temporary folder).
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { signAccessToken } from '../../src/auth/tokens.ts';
import { graphileMigrate, migrate } from '../../src/db/migrate.ts';
import { freshBenchDatabase, startApiProcess, startBenchServer } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const int = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const CLIENTS = int('BENCH_CLIENTS', 16);
const SECONDS = int('BENCH_SECONDS', 15);
const WALLETS = int('BENCH_WALLETS', 50);
const WARMUP = int('BENCH_WARMUP_SECONDS', 2);
const SCALE = int('BENCH_SCALE', CLIENTS);
const UNSHARDED = process.env.BENCH_UNSHARDED !== '0';
// For quick experiments: BENCH_CASES=a,b runs only those (ratios need a, b, c, d).
const CASES = new Set((process.env.BENCH_CASES ?? 'a,b,c,d,d0').split(','));
const DATABASE = 'pgwallet_bench';
const HISTORY = int('BENCH_HISTORY', 20_000); // transfers written before measuring

interface CaseResult {
  tps: number;
  p50_ms: number;
  p99_ms: number;
  done: number;
  failed: number;
  errors: string[];
}

/** A client: set up once, then `op` runs one transaction. */
interface Driver {
  op(): Promise<void>;
  close(): Promise<void>;
}

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
const percentile = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Set in main: a superuser connection, to start every case from a checkpoint. */
let superuser: pg.Client | undefined;

async function runCase(name: string, makeDriver: (i: number) => Promise<Driver>): Promise<CaseResult> {
  // Every case starts with the dirty pages of the one before written out, so
  // no case pays for another's checkpoint.
  await superuser?.query('checkpoint');
  const drivers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => makeDriver(i)));
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  process.stdout.write(`  ${name}: running ${WARMUP} s warm-up + ${SECONDS} s with ${CLIENTS} clients… `);
  await Promise.all(
    drivers.map(async (driver) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await driver.op();
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
  await Promise.all(drivers.map((d) => d.close()));
  const sorted = Float64Array.from(latencies).sort();
  const result = {
    tps: round(latencies.length / SECONDS, 1),
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    done: latencies.length,
    failed,
    errors: [...errors].map(([message, count]) => `${count}× ${message}`),
  };
  console.log(`${result.tps} tx/s`);
  return result;
}

async function connect(url: string, setup?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgwallet-bench' });
  client.on('error', () => undefined); // the server going away at the end is not news
  await client.connect();
  if (setup) await client.query(setup);
  return client;
}

const startLedgerApi = (authUrl: string, jwk: string) =>
  startApiProcess(join(here, 'api-server.ts'), { BENCH_AUTH_URL: authUrl, BENCH_JWK: jwk, BENCH_CLIENTS: String(CLIENTS) });

async function createPgbenchTables(db: pg.Client): Promise<void> {
  // pgbench -i's tables and rows: per scale unit 1 branch, 10 tellers, 100 000 accounts.
  await db.query(`
    drop table if exists pgbench_history, pgbench_tellers, pgbench_accounts, pgbench_branches;
    create table pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
    create table pgbench_tellers (tid int not null primary key, bid int, tbalance int, filler char(84)) with (fillfactor = 100);
    create table pgbench_accounts (aid int not null primary key, bid int, abalance int, filler char(84)) with (fillfactor = 100);
    create table pgbench_branches (bid int not null primary key, bbalance int, filler char(88)) with (fillfactor = 100);
    insert into pgbench_branches (bid, bbalance) select b, 0 from generate_series(1, ${SCALE}) b;
    insert into pgbench_tellers (tid, bid, tbalance) select t, (t - 1) / 10 + 1, 0 from generate_series(1, ${SCALE * 10}) t;
    insert into pgbench_accounts (aid, bid, abalance, filler) select a, (a - 1) / 100000 + 1, 0, '' from generate_series(1, ${SCALE * 100_000}) a;
  `);
  await db.query('vacuum analyze pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history');
}

interface Wallet {
  userId: string;
  walletId: string;
  email: string;
  token: string;
}

async function createWallets(db: pg.Client, jwk: string): Promise<Wallet[]> {
  const keys = await loadSigningKeys(jwk);
  const tokens = { keys, issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 3600 };
  const wallets: Wallet[] = [];
  for (let i = 0; i < WALLETS; i++) {
    const email = `bench-${i}-${randomUUID().slice(0, 8)}@example.com`;
    // Users are inserted directly (no bcrypt); the trigger opens their ZAR wallet.
    const user = (await db.query(`insert into app_public.users (email, full_name, email_verified_at) values ($1, $2, now()) returning id`, [email, `Bench ${i}`])).rows[0];
    const session = (await db.query(`select session_id from app_private.start_session((select u from app_public.users u where u.id = $1))`, [user.id])).rows[0]
      .session_id;
    const walletId = (await db.query(`select ledger.open_wallet($1, 'ZAR') as id`, [user.id])).rows[0].id;
    await db.query(`select ledger.move('deposit', ledger.system_account('revio_clearing', 'ZAR'), $1, 1000000000000, 'bench funds')`, [walletId]);
    const token = (await signAccessToken(tokens, { userId: user.id, role: 'app_user', sessionId: session })).token;
    wallets.push({ userId: user.id, walletId, email, token });
  }
  return wallets;
}

/**
 * A ledger with some history, as any real one has. On empty tables PostgreSQL
 * plans the ledger functions' lookups as sequential scans, and sessions keep
 * those plans while the tables grow: the first case measured ran 3x slower.
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

async function main() {
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
    console.log(`pgwallet ledger benchmark: ${server.kind}; ${settings.map((s) => `${s.name}=${s.setting}`).join(', ')}`);
    // Other work on the machine skews the figures; say how busy it was.
    const loadBefore = loadavg()[0];
    console.log(`  ${CLIENTS} clients, ${SECONDS} s per case (+${WARMUP} s warm-up), ${WALLETS} wallets, pgbench scale ${SCALE}; setting up…`);
    await createPgbenchTables(setup);
    const jwk = await generatePrivateJwk();
    const wallets = await createWallets(setup, jwk);
    await writeHistory(setup, wallets);
    await setup.query('vacuum analyze');
    superuser = await connect(rootDb.toString());
    const apiProcess = await startLedgerApi(authUrl, jwk);
    api = apiProcess.child;

    const results: Record<string, CaseResult> = {};

    const skipped = (key: string): Promise<CaseResult> =>
      Promise.resolve({ tps: NaN, p50_ms: NaN, p99_ms: NaN, done: 0, failed: 0, errors: [`${key}: skipped (BENCH_CASES)`] });
    results.baseline = !CASES.has('a') ? await skipped('a') : await runCase('a. pgbench TPC-B-like (baseline)', async () => {
      const client = await connect(ownerUrl);
      return {
        async op() {
          const delta = Math.floor(Math.random() * 10001) - 5000;
          const aid = 1 + Math.floor(Math.random() * SCALE * 100_000);
          const tid = 1 + Math.floor(Math.random() * SCALE * 10);
          const bid = 1 + Math.floor(Math.random() * SCALE);
          await client.query('begin');
          try {
            await client.query({ name: 'tpcb-1', text: 'update pgbench_accounts set abalance = abalance + $1 where aid = $2', values: [delta, aid] });
            await client.query({ name: 'tpcb-2', text: 'select abalance from pgbench_accounts where aid = $1', values: [aid] });
            await client.query({ name: 'tpcb-3', text: 'update pgbench_tellers set tbalance = tbalance + $1 where tid = $2', values: [delta, tid] });
            await client.query({ name: 'tpcb-4', text: 'update pgbench_branches set bbalance = bbalance + $1 where bid = $2', values: [delta, bid] });
            await client.query({
              name: 'tpcb-5',
              text: 'insert into pgbench_history (tid, bid, aid, delta, mtime) values ($1, $2, $3, $4, current_timestamp)',
              values: [tid, bid, aid, delta],
            });
            await client.query('end');
          } catch (error) {
            await client.query('rollback');
            throw error;
          }
        },
        close: () => client.end(),
      };
    });

    results.sql = !CASES.has('b') ? await skipped('b') : await runCase('b. transfer through the SQL function', async () => {
      const client = await connect(ownerUrl);
      return {
        async op() {
          const [from, to] = twoWallets(wallets);
          await client.query({
            name: 'transfer',
            text: 'select (app_private.transfer($1, $2, $3, $4, $5)).id',
            values: [from.userId, from.walletId, to.email, 1 + Math.floor(Math.random() * 100), randomUUID()],
          });
        },
        close: () => client.end(),
      };
    });

    const mutation = 'mutation($input: TransferInput!) { transfer(input: $input) { result { rowId amount createdAt } } }';
    // A plain keep-alive HTTP client (one socket per client): the load
    // generator shares the 2 cores with the API and PostgreSQL, so it should
    // cost as little as possible.
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    const endpoint = new URL(`${apiProcess.url}/graphql`);
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
    results.graphql = !CASES.has('c') ? await skipped('c') : await runCase('c. transfer through GraphQL over HTTP', async () => ({
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
      close: async () => undefined,
    }));
    agent.destroy();

    const hot = (shardSetting?: string) => async () => {
      const client = await connect(ownerUrl, shardSetting);
      return {
        async op() {
          const from = pick(wallets);
          await client.query({
            name: 'pay-fee',
            text: 'select app_private.pay_fee($1, $2, $3, $4)',
            values: [from.userId, from.walletId, 1 + Math.floor(Math.random() * 100), randomUUID()],
          });
        },
        close: () => client.end(),
      };
    };
    results.hot = !CASES.has('d') ? await skipped('d') : await runCase('d. hot account: every transfer credits the fees account', hot());
    if (UNSHARDED && CASES.has('d0')) results.hot_unsharded = await runCase('d0. the same with one fees shard (ledger.system_shards = 1)', hot('set ledger.system_shards = 1'));

    const health = (
      await setup.query(`select (select count(*) from audit.trial_balance where net_balance <> 0) as unbalanced_currencies,
                                (select count(*) from audit.balance_drift) as drifting_accounts,
                                (select count(*) from ledger.accounts where kind = 'user_wallet' and balance - held < 0) as negative_wallets,
                                (select count(*) from audit.system_balances where kind = 'fees') as fee_currencies,
                                (select shards from audit.system_balances where kind = 'fees' and currency = 'ZAR') as fee_shards`)
    ).rows[0];
    await setup.end();
    await superuser.end();

    const { baseline, sql, graphql } = results;
    const hotCase = results.hot;
    const ratios = {
      sql_vs_baseline: round(sql.tps / baseline.tps),
      graphql_vs_sql: round(graphql.tps / sql.tps),
      hot_vs_sql: round(hotCase.tps / sql.tps),
    };
    const failed = Object.values(results).reduce((sum, r) => sum + r.failed, 0);

    console.log('');
    console.log('case                                   tx/s     p50 ms   p99 ms   failed');
    const label: Record<string, string> = {
      baseline: 'a. pgbench TPC-B-like (baseline)',
      sql: 'b. SQL transfer',
      graphql: 'c. GraphQL transfer (HTTP, JWT)',
      hot: 'd. hot account (sharded)',
      hot_unsharded: 'd0. hot account, 1 shard',
    };
    for (const [key, r] of Object.entries(results)) {
      console.log(`${label[key].padEnd(36)} ${String(r.tps).padStart(8)} ${String(r.p50_ms).padStart(9)} ${String(r.p99_ms).padStart(8)} ${String(r.failed).padStart(8)}`);
      for (const e of r.errors.slice(0, 3)) console.log(`    ${e}`);
    }
    console.log('');
    console.log(`ratios: b/a (sql vs baseline) = ${ratios.sql_vs_baseline}   (target >= 1.0)`);
    console.log(`        c/b (graphql vs sql)  = ${ratios.graphql_vs_sql}   (target >= 0.4)`);
    console.log(`        d/b (hot vs sql)      = ${ratios.hot_vs_sql}   (target >= 0.8)`);
    if (results.hot_unsharded) console.log(`        d0/b (one shard vs sql) = ${round(results.hot_unsharded.tps / sql.tps)}   (what sharding buys)`);
    console.log(`failed transactions: ${failed}`);
    console.log(`machine load average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadavg()[0].toFixed(2)} on ${availableParallelism()} cores`);
    console.log(
      `ledger after the run: ${health.unbalanced_currencies} unbalanced currencies, ${health.drifting_accounts} drifting accounts, ${health.negative_wallets} negative wallets; fees account in ${health.fee_shards} shards`,
    );

    const output = {
      clients: CLIENTS,
      seconds: SECONDS,
      wallets: WALLETS,
      pgbench_scale: SCALE,
      server: server.kind,
      baseline_tps: baseline.tps,
      sql_transfer_tps: sql.tps,
      graphql_transfer_tps: graphql.tps,
      hot_account_tps: hotCase.tps,
      hot_account_unsharded_tps: results.hot_unsharded?.tps ?? null,
      p50_ms: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.p50_ms])),
      p99_ms: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.p99_ms])),
      ratios,
      failed,
      ledger_health: health,
      load_average_before: loadBefore,
      load_average_after: loadavg()[0],
      finished_at: new Date().toISOString(),
    };
    const path = join(here, 'results', 'ledger.json');
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(output, null, 2)}\n`);
    console.log(`written to ${path}`);
  } finally {
    if (api && api.exitCode === null) {
      const exited = new Promise((resolve) => api!.once('exit', resolve));
      api.kill('SIGTERM');
      await exited;
    }
    await server.stop();
  }
}

await main();

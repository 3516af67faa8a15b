// `npm run bench:commerce` — the commerce benchmark (not part of `npm test`).
//
// One PostgreSQL with fsync on, one database, one run, the same Node driver
// (node-pg) and the same number of clients for the timed cases. Every client
// is a signed-in buyer (request.jwt.claims.* set on its connection, as the
// API does per request) calling the public SQL functions the GraphQL
// mutations are:
//   a. transfer     app_public.transfer between 50 wallets (the reference)
//   b. purchase     app_public.purchase of 1 unit of a product with stock, the
//                   product picked among 50 merchants (1 product each)
//   c. hot          every purchase goes to ONE merchant (its 50 products), so
//                   every credit lands in one logical merchant wallet (sharded)
//   c1. hot, 1 shard  the same with the merchant wallet unsharded (session
//                   setting pgwallet.commerce_merchant_shards = 1), to show
//                   what the sharding buys (BENCH_UNSHARDED=0 skips it)
//   d. last units   64 clients racing to buy the last 100 units of one product:
//                   exactly 100 must succeed, the rest get OUT_OF_STOCK
// Writes tests/bench/results/commerce.json.
//
// The machine is shared, so its load drifts: the timed cases run interleaved,
// a-b-c then a-b-c again (BENCH_ROUNDS rounds of BENCH_SECONDS each), and each
// figure is over all its rounds, so drift hits all three alike.
//
// Settings: BENCH_CLIENTS (16), BENCH_SECONDS (5 per case per round),
// BENCH_ROUNDS (3), BENCH_WARMUP_SECONDS (1), BENCH_RACE_CLIENTS (64), BENCH_RACE_UNITS (100),
// BENCH_DATABASE_URL (a superuser URL; default: a fresh embedded PostgreSQL 18).
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { graphileMigrate, migrate } from '../../src/db/migrate.ts';
import { freshBenchDatabase, startBenchServer } from './harness.ts';
import { connect, envNumber, percentile, round } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENTS = envNumber('BENCH_CLIENTS', 16);
const SECONDS = envNumber('BENCH_SECONDS', 5);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const WARMUP = envNumber('BENCH_WARMUP_SECONDS', 1);
const RACE_CLIENTS = envNumber('BENCH_RACE_CLIENTS', 64);
const RACE_UNITS = envNumber('BENCH_RACE_UNITS', 100);
const MERCHANTS = 50;
const UNSHARDED = process.env.BENCH_UNSHARDED !== '0';
const DATABASE = 'pgwallet_bench_commerce';

interface CaseResult {
  tps: number;
  p50_ms: number;
  p99_ms: number;
  done: number;
  failed: number;
  errors: string[];
}
/** Several rounds of one case as one result (latencies pooled). */
function merge(rounds: (CaseResult & { latencies: number[] })[]): CaseResult {
  const sorted = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
  return {
    tps: round(sorted.length / (SECONDS * rounds.length), 1),
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    done: sorted.length,
    failed: rounds.reduce((a, r) => a + r.failed, 0),
    errors: rounds.flatMap((r) => r.errors),
  };
}

interface Buyer {
  userId: string;
  sessionId: string;
  walletId: string;
  email: string;
}

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

/** A connection signed in as the buyer, as the API's per-request settings would. */
async function signedIn(url: string, buyer: Buyer): Promise<pg.Client> {
  const client = await connect(url, 'pgwallet-bench-commerce');
  await client.query(`select set_config('request.jwt.claims.sub', $1, false), set_config('request.jwt.claims.sid', $2, false)`, [buyer.userId, buyer.sessionId]);
  return client;
}

async function runCase(name: string, superuser: pg.Client, makeOp: (i: number) => Promise<{ op(): Promise<void>; close(): Promise<void> }>): Promise<CaseResult & { latencies: number[] }> {
  await superuser.query('checkpoint');
  const drivers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => makeOp(i)));
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  process.stdout.write(`  ${name}: ${WARMUP} s warm-up + ${SECONDS} s with ${CLIENTS} clients… `);
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
    latencies,
  };
  console.log(`${result.tps} tx/s (p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ${failed} failed)`);
  return result;
}

/** Users straight in SQL (no password hashing), each with a live session and a funded ZAR wallet. */
async function createBuyers(db: pg.Client, n: number, label: string, funds: number): Promise<Buyer[]> {
  const { rows } = await db.query(
    // Verified addresses: transfers go only to those (RECIPIENT_UNVERIFIED otherwise).
    `with u as (insert into app_public.users (email, full_name, email_verified_at)
                select format('%s-%s-%s@bench.example', $1::text, g, substr(md5(random()::text), 1, 6)), 'Bench ' || g, now() from generate_series(1, $2::int) g
                returning id, email),
          s as (insert into app_private.sessions (user_id) select id from u returning id, user_id)
     select u.id as user_id, u.email, s.id as session_id, ledger.open_wallet(u.id, 'ZAR') as wallet_id
       from u join s on s.user_id = u.id`,
    [label, n],
  );
  for (const r of rows) {
    if (funds > 0) await db.query(`select ledger.move('deposit', ledger.system_account('revio_clearing', 'ZAR'), $1, $2::bigint, 'bench funds')`, [r.wallet_id, String(funds)]);
  }
  return rows.map((r) => ({ userId: r.user_id, email: r.email, sessionId: r.session_id, walletId: r.wallet_id }));
}

/** Merchants (via becomeMerchant/createProduct as themselves), each with `products` products of `stock` units. */
async function createMerchants(url: string, db: pg.Client, n: number, products: number, stock: number, label: string): Promise<{ merchantId: string; productIds: string[] }[]> {
  const people = await createBuyers(db, n, label, 0);
  const out = [];
  for (const person of people) {
    const client = await signedIn(url, person);
    await client.query(`select app_public.become_merchant($1)`, [`Shop ${person.email}`]);
    const productIds: string[] = [];
    for (let p = 0; p < products; p++) {
      const { rows } = await client.query(`select (app_public.create_product($1, 1000, 'ZAR', $2)).id`, [`Product ${p}`, stock]);
      productIds.push(rows[0].id);
    }
    await client.end();
    out.push({ merchantId: person.userId, productIds });
  }
  return out;
}

const PURCHASE = `select (app_public.purchase(array[row($1::uuid, 1)]::app_public.order_item[], $2)).id`;

async function main() {
  const server = await startBenchServer();
  try {
    const { ownerUrl } = await freshBenchDatabase(server.rootUrl, DATABASE);
    const rootDb = new URL(server.rootUrl);
    rootDb.pathname = `/${DATABASE}`;
    await migrate(ownerUrl);
    await graphileMigrate(['watch', '--once'], { databaseUrl: ownerUrl });
    const setup = await connect(ownerUrl, 'pgwallet-bench-commerce');
    const superuser = await connect(rootDb.toString());
    const loadBefore = loadavg()[0];
    console.log(`pgwallet commerce benchmark: ${server.kind}; ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s per case (+${WARMUP} s warm-up each); setting up…`);

    const buyers = await createBuyers(setup, Math.max(CLIENTS, MERCHANTS), 'buyer', 1_000_000_000);
    const spread = await createMerchants(ownerUrl, setup, MERCHANTS, 1, 100_000_000, 'spread');
    const [hot] = await createMerchants(ownerUrl, setup, 1, MERCHANTS, 100_000_000, 'hot');
    const [race] = await createMerchants(ownerUrl, setup, 1, 1, RACE_UNITS, 'race');
    const fee = (await setup.query(`select commerce.setting('platform_fee_bps') as bps, commerce.setting('merchant_shards') as shards`)).rows[0];
    await setup.query('vacuum analyze');

    const transferOp = async (i: number) => {
      const me = buyers[i % buyers.length];
      const client = await signedIn(ownerUrl, me);
      return {
        async op() {
          let to = pick(buyers);
          while (to === me) to = pick(buyers);
          await client.query({ name: 'transfer', text: 'select (app_public.transfer($1, $2, 1, $3)).id', values: [me.walletId, to.email, randomUUID()] });
        },
        close: () => client.end(),
      };
    };
    const buying = (products: () => string, shards?: number) => async (i: number) => {
      const client = await signedIn(ownerUrl, buyers[i % buyers.length]);
      if (shards) await client.query(`select set_config('pgwallet.commerce_merchant_shards', $1, false)`, [String(shards)]);
      return {
        async op() {
          await client.query({ name: 'purchase', text: PURCHASE, values: [products(), randomUUID()] });
        },
        close: () => client.end(),
      };
    };
    const rounds: Record<'transfer' | 'purchase' | 'hot' | 'hotOneShard', (CaseResult & { latencies: number[] })[]> = { transfer: [], purchase: [], hot: [], hotOneShard: [] };
    for (let r = 1; r <= ROUNDS; r++) {
      console.log(` round ${r}/${ROUNDS}`);
      rounds.transfer.push(await runCase('a. transfer (reference)', superuser, transferOp));
      rounds.purchase.push(await runCase('b. purchase, 50 merchants', superuser, buying(() => pick(spread).productIds[0])));
      rounds.hot.push(await runCase('c. purchase, one hot merchant', superuser, buying(() => pick(hot.productIds))));
      if (UNSHARDED) rounds.hotOneShard.push(await runCase('c1. hot merchant, 1 shard', superuser, buying(() => pick(hot.productIds), 1)));
    }
    const transfer = merge(rounds.transfer);
    const purchase = merge(rounds.purchase);
    const hotCase = merge(rounds.hot);
    const hotOneShard = UNSHARDED ? merge(rounds.hotOneShard) : undefined;
    console.log(`  over ${ROUNDS} rounds: transfer ${transfer.tps}/s, purchase ${purchase.tps}/s, hot ${hotCase.tps}/s`);

    // d. The race: RACE_CLIENTS connections each buy 1 unit until told OUT_OF_STOCK.
    process.stdout.write(`  d. ${RACE_CLIENTS} clients racing for the last ${RACE_UNITS} units… `);
    const racers = await Promise.all(Array.from({ length: RACE_CLIENTS }, (_, i) => signedIn(ownerUrl, buyers[i % buyers.length])));
    let sold = 0;
    let outOfStock = 0;
    const unexpected = new Map<string, number>();
    const raceStart = performance.now();
    await Promise.all(
      racers.map(async (client) => {
        for (;;) {
          try {
            await client.query({ name: 'purchase', text: PURCHASE, values: [race.productIds[0], randomUUID()] });
            sold += 1;
          } catch (error) {
            const e = error as { code?: string; message: string };
            if (e.code === 'PW521') {
              outOfStock += 1;
              return;
            }
            unexpected.set(e.message.slice(0, 120), (unexpected.get(e.message.slice(0, 120)) ?? 0) + 1);
            if ((unexpected.get(e.message.slice(0, 120)) ?? 0) > 100) return;
          }
        }
      }),
    );
    const raceMs = performance.now() - raceStart;
    await Promise.all(racers.map((c) => c.end()));
    const stockLeft = (await setup.query(`select stock from app_public.products where id = $1`, [race.productIds[0]])).rows[0].stock as number;
    const soldInDb = (await setup.query(`select coalesce(sum(l.quantity), 0)::int as n from app_public.order_lines l join app_public.orders o on o.id = l.order_id where l.product_id = $1 and o.status = 'paid'`, [race.productIds[0]])).rows[0].n as number;
    console.log(`${sold} sold, ${outOfStock} refused, stock left ${stockLeft} (${Math.round(raceMs)} ms)`);

    const audit = {
      stock_mismatches: (await setup.query(`select count(*)::int as n from audit.commerce_stock_mismatches`)).rows[0].n,
      order_money_mismatches: (await setup.query(`select count(*)::int as n from audit.commerce_order_money_mismatches`)).rows[0].n,
      trial_balance_nonzero: (await setup.query(`select count(*)::int as n from audit.trial_balance where net_balance <> 0`)).rows[0].n,
    };
    const hotShards = (await setup.query(`select count(*)::int as n from ledger.accounts where owner_id = $1 and kind = 'merchant_wallet'`, [hot.merchantId])).rows[0].n;
    const failedUnexpected = transfer.failed + purchase.failed + hotCase.failed + (hotOneShard?.failed ?? 0) + [...unexpected.values()].reduce((a, b) => a + b, 0);
    const result = {
      clients: CLIENTS,
      seconds: SECONDS * ROUNDS,
      rounds: ROUNDS,
      transfer_tps: transfer.tps,
      purchases_per_s: purchase.tps,
      hot_merchant_purchases_per_s: hotCase.tps,
      hot_merchant_one_shard_purchases_per_s: hotOneShard?.tps ?? null,
      ratios: {
        purchase_vs_transfer: round(purchase.tps / transfer.tps),
        hot_vs_purchase: round(hotCase.tps / purchase.tps),
      },
      oversold: Math.max(0, soldInDb - RACE_UNITS) + Math.max(0, -stockLeft),
      stock_left: stockLeft,
      race: { clients: RACE_CLIENTS, units: RACE_UNITS, sold, sold_in_db: soldInDb, refused_out_of_stock: outOfStock, ms: Math.round(raceMs) },
      failed_unexpected: failedUnexpected,
      cases: { transfer, purchase, hot: { ...hotCase, merchant_wallet_shards: hotShards }, hot_one_shard: hotOneShard ?? null },
      audit,
      platform_fee_bps: Number(fee.bps),
      merchant_shards: Number(fee.shards),
      machine: { cpus: availableParallelism(), load_before: round(loadBefore), load_after: round(loadavg()[0]), server: server.kind },
      at: new Date().toISOString(),
    };
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(join(here, 'results', 'commerce.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ ...result, cases: undefined }, null, 2));
    await setup.end();
    await superuser.end();
  } finally {
    await server.stop();
  }
}

await main();

// `npm run bench:votes` — the voting benchmark (not part of `npm test`).
//
// One PostgreSQL with fsync on, the same Node driver (node-pg) and the same
// number of clients for every case, each client a connection calling the SQL
// function the GraphQL mutation calls (so the figures compare the database
// work, not HTTP):
//   transfer   app_private.transfer between random wallets of the pool (the
//              reference: the wallet's own money-moving transaction)
//   spread     app_private.cast_votes: a random voter of the pool pays for one
//              vote for a random contestant of 20 (one event, one category)
//   hot        the same, every vote for one contestant (a live final): one
//              event account and one contestant, both sharded
//   cap race   one voter, cap 50 votes a day, BENCH_RACE requests of one vote
//              at once from all clients: accepted must not exceed the cap
// At the end, the leaderboard must equal the recount of counted votes
// (audit.leaderboard_drift empty) and the ledger must balance.
// Writes tests/bench/results/votes.json.
//
// Settings: BENCH_CLIENTS (16), BENCH_SECONDS (10 per case), BENCH_WARMUP_SECONDS
// (2, not counted), BENCH_VOTERS (200), BENCH_RACE (200 requests),
// BENCH_DATABASE_URL (a superuser URL; default: a fresh embedded PostgreSQL 18
// with fsync on in a temporary folder).
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
const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP = envNumber('BENCH_WARMUP_SECONDS', 2);
const VOTERS = envNumber('BENCH_VOTERS', 200);
const RACE = envNumber('BENCH_RACE', 200);
const RACE_CAP = 50;
const CONTESTANTS = 20;
const DATABASE = 'pgwallet_bench_votes';
const PRICE = 100;

interface CaseResult {
  tps: number;
  p50_ms: number;
  p99_ms: number;
  done: number;
  failed: number;
  errors: string[];
}

const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)];

/** CLIENTS connections each running `op` in a loop for WARMUP + SECONDS; counts what finished inside the measured window. */
async function runCase(url: string, name: string, op: (client: pg.Client) => Promise<unknown>): Promise<CaseResult> {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(url)));
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  process.stdout.write(`  ${name}: ${WARMUP} s warm-up + ${SECONDS} s with ${CLIENTS} clients… `);
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await op(client);
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
  await Promise.all(clients.map((c) => c.end()));
  const sorted = Float64Array.from(latencies).sort();
  const result = {
    tps: round(latencies.length / SECONDS, 1),
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    done: latencies.length,
    failed,
    errors: [...errors].map(([message, count]) => `${count}× ${message}`),
  };
  console.log(`${result.tps}/s (p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms${failed ? `, ${failed} failed` : ''})`);
  return result;
}

interface Voter {
  userId: string;
  email: string;
  walletId: string;
}

async function setUp(db: pg.Client) {
  // Two statements: the wallets are opened by the users' insert trigger, which
  // a data-modifying CTE's outer query would not see.
  await db.query(
    // Verified addresses: the transfer reference case sends only to those (RECIPIENT_UNVERIFIED otherwise).
    `insert into app_public.users (email, full_name, email_verified_at)
     select 'voter-' || i || '@bench.example', 'Voter ' || i, now() from generate_series(1, $1::int) i`,
    [VOTERS + 1],
  );
  const { rows: voters } = await db.query<Voter>(
    `select u.id as "userId", u.email::text as email, a.id as "walletId"
       from app_public.users u join ledger.accounts a on a.owner_id = u.id and a.kind = 'user_wallet'
      where u.email::text like '%@bench.example' order by u.email`,
  );
  await db.query(
    `select ledger.move('deposit', ledger.system_account('revio_clearing', 'ZAR'), w, 1000000000000::bigint, 'bench funds')
       from unnest($1::uuid[]) w`,
    [voters.map((v) => v.walletId)],
  );
  const organiser = voters.pop()!;
  // The organisation and events are made as the organiser would (RLS applies).
  await db.query('begin');
  await db.query(`select set_config('request.jwt.claims.sub', $1, true)`, [organiser.userId]);
  const { rows: [org] } = await db.query(
    `insert into app_public.organisations (name, created_by) values ('Bench Org', $1) returning id`, [organiser.userId]);
  await db.query(`insert into app_public.organisation_members (organisation_id, user_id, role) values ($1, $2, 'owner')`, [org.id, organiser.userId]);
  const makeEvent = async (name: string, cap: number | null) => {
    const { rows: [event] } = await db.query(
      `insert into app_public.events (organisation_id, name, opens_at, closes_at, vote_price, max_votes_per_voter_per_day,
                                      voter_requests_per_minute, address_requests_per_minute)
       values ($1, $2, now() - interval '1 minute', now() + interval '1 day', $3, $4, 1000000000, 1000000000) returning id`,
      [org.id, name, PRICE, cap]);
    const { rows: [category] } = await db.query(`insert into app_public.categories (event_id, name) values ($1, 'Best') returning id`, [event.id]);
    const { rows: contestants } = await db.query(
      `insert into app_public.contestants (category_id, name) select $1, 'Contestant ' || i from generate_series(1, $2::int) i returning id`,
      [category.id, CONTESTANTS]);
    await db.query(`update app_public.events set status = 'open' where id = $1`, [event.id]);
    return { eventId: event.id as string, categoryId: category.id as string, contestants: contestants.map((c) => c.id as string) };
  };
  // Capped like a real event (generously, so that no vote is refused).
  const main = await makeEvent('Bench final', 1_000_000);
  const race = await makeEvent('Bench cap race', RACE_CAP);
  await db.query('commit');
  return { voters, main, race };
}

const castVote = (client: pg.Client, voter: Voter, contestantId: string) =>
  client.query({
    name: 'cast_votes',
    text: 'select (app_private.cast_votes($1, $2, 1, $3, null)).status',
    values: [voter.userId, contestantId, randomUUID()],
  });

async function main() {
  const server = await startBenchServer();
  try {
    const { ownerUrl } = await freshBenchDatabase(server.rootUrl, DATABASE);
    await migrate(ownerUrl);
    await graphileMigrate(['watch', '--once'], { databaseUrl: ownerUrl }); // work in progress, if any
    const db = await connect(ownerUrl);
    const superuser = await connect(server.rootUrl); // CHECKPOINT between cases, so no case pays for another's dirty pages
    const version = (await db.query(`show server_version`)).rows[0].server_version;
    console.log(`pgwallet voting benchmark: ${server.kind} (PostgreSQL ${version}); ${CLIENTS} clients, ${VOTERS} voters, ${CONTESTANTS} contestants`);
    const loadBefore = loadavg()[0];
    const { voters, main: event, race } = await setUp(db);
    await db.query('vacuum analyze');
    await superuser.query('checkpoint');

    const transfer = await runCase(ownerUrl, 'transfer', (client) => {
      const from = pick(voters);
      let to = pick(voters);
      while (to === from) to = pick(voters);
      return client.query({
        name: 'transfer',
        text: 'select (app_private.transfer($1, $2, $3, $4, $5)).id',
        values: [from.userId, from.walletId, to.email, 100, randomUUID()],
      });
    });
    await superuser.query('checkpoint');
    const spread = await runCase(ownerUrl, 'votes, spread over 20 contestants', (client) => castVote(client, pick(voters), pick(event.contestants)));
    await superuser.query('checkpoint');
    const hot = await runCase(ownerUrl, 'votes, all for one contestant', (client) => castVote(client, pick(voters), event.contestants[0]));

    // The cap race: one voter, RACE single-vote requests spread over all clients at once.
    process.stdout.write(`  cap race: ${RACE} requests from one voter, cap ${RACE_CAP}… `);
    const racer = voters[0];
    const raceClients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(ownerUrl)));
    const outcomes = await Promise.all(
      Array.from({ length: RACE }, (_, i) =>
        castVote(raceClients[i % CLIENTS], racer, pick(race.contestants)).then(
          () => 'accepted',
          (error: { code?: string }) => error.code ?? 'error',
        ),
      ),
    );
    await Promise.all(raceClients.map((c) => c.end()));
    const accepted = outcomes.filter((o) => o === 'accepted').length;
    const { rows: [stored] } = await db.query(
      `select coalesce(sum(count), 0)::int as votes from app_public.votes where event_id = $1 and voter_id = $2`, [race.eventId, racer.userId]);
    const capViolations = Math.max(0, accepted - RACE_CAP) + Math.max(0, stored.votes - RACE_CAP);
    console.log(`${accepted} accepted, ${outcomes.filter((o) => o === 'PW604').length} refused with VOTE_CAP_REACHED, ${stored.votes} stored`);

    const { rows: drift } = await db.query(`select count(*)::int as n from audit.leaderboard_drift`);
    const { rows: [health] } = await db.query(
      `select (select count(*) from audit.trial_balance where net_balance <> 0)::int as unbalanced_currencies,
              (select count(*) from audit.balance_drift)::int as drifted_accounts`);
    const { rows: [tally] } = await db.query(
      `select (select sum(votes) from app_private.tally_shards where contestant_id = $1)::bigint as hot_votes,
              (select count(*) from app_private.tally_shards where contestant_id = $1)::int as hot_shards`, [event.contestants[0]]);

    const results = {
      when: new Date().toISOString(),
      server: `${server.kind}, PostgreSQL ${version}`,
      cpus: availableParallelism(),
      load_average_before: round(loadBefore),
      clients: CLIENTS,
      seconds: SECONDS,
      votes_per_s: spread.tps,
      hot_contestant_votes_per_s: hot.tps,
      transfer_tps: transfer.tps,
      ratios: {
        votes_vs_transfer: round(spread.tps / transfer.tps),
        hot_vs_votes: round(hot.tps / spread.tps),
      },
      cap_violations: capViolations,
      leaderboard_mismatch: drift[0].n,
      cap_race: { requests: RACE, cap: RACE_CAP, accepted, stored_votes: stored.votes },
      ledger: health,
      hot_contestant: { votes: Number(tally.hot_votes), tally_shards_used: tally.hot_shards },
      cases: { transfer, spread, hot },
    };
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(join(here, 'results', 'votes.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify({ ...results, cases: undefined }, null, 2));
    await db.end();
    await superuser.end();
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

await main();

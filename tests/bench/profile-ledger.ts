// `npm run bench:ledger:profile` — where a posting's time goes (not part of `npm test`).
//
// A fresh embedded PostgreSQL 18 (fsync on) with pg_stat_statements loaded
// (shared_preload_libraries, track = all, so statements inside functions and
// triggers count too) and track_functions = all, and two databases: `before`
// (the committed migrations, or those of git ref PROFILE_BEFORE_REF) and
// `after` (the committed migrations plus migrations/current.sql, the work in
// progress). One client per database runs PROFILE_TRANSFERS
// transfers one at a time (no contention: this is the CPU cost, not the
// queueing), the two interleaved in batches of 250 so that the machine's
// load hits both alike; then, for each database, it prints
//   - the wall time per transfer (round trip and commit included),
//   - the server's CPU time per transfer: the backend's user + system time
//     from /proc (pg_stat_statements leaves out executor start-up and
//     shutdown, a large share of a short statement's cost),
//   - per transfer: each statement's executions and mean time,
//   - per transfer: each function's self time (triggers included),
//   - EXPLAIN (ANALYZE, BUFFERS) of one more transfer;
// and the ratios after/before; writes tests/bench/results/ledger-profile.json
// (PROFILE_NAME overrides the file name). Settings: PROFILE_TRANSFERS (3000), PROFILE_WALLETS (50).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { graphileMigrate, migrate } from '../../src/db/migrate.ts';
import { freshBenchDatabase, startBenchServer } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const TRANSFERS = Number(process.env.PROFILE_TRANSFERS ?? 3000);
const WALLETS = Number(process.env.PROFILE_WALLETS ?? 50);
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

const server = await startBenchServer({
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.max': '5000',
  track_functions: 'all',
});
interface Profile {
  wall_ms_per_transfer: number;
  server_cpu_ms_per_transfer: number | null;
  top_level_ms: number;
  wal_bytes_per_transfer: number;
  statements: Record<string, unknown>[];
  functions: Record<string, unknown>[];
  explain: string[];
}

const BEFORE_REF = process.env.PROFILE_BEFORE_REF;

/** Runs graphile-migrate's `migrate` on the migrations of a git ref (a copy, in a temporary folder). */
function migrateAtRef(ref: string, databaseUrl: string) {
  const root = join(here, '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'pgwallet-profile-ref-'));
  try {
    execFileSync('sh', ['-c', `git archive "$0" .gmrc migrations sql | tar -x -C "$1"`, ref, dir], { cwd: root });
    const cli = createRequire(import.meta.url).resolve('graphile-migrate/dist/cli.js');
    execFileSync(process.execPath, [cli, 'migrate'], { cwd: dir, env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function createDatabase(database: string, withCurrent: boolean): Promise<string> {
  const { ownerUrl } = await freshBenchDatabase(server.rootUrl, database);
  if (!withCurrent && BEFORE_REF) migrateAtRef(BEFORE_REF, ownerUrl);
  else await migrate(ownerUrl);
  if (withCurrent) await graphileMigrate(['watch', '--once'], { databaseUrl: ownerUrl });
  return ownerUrl;
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** CPU time (ms, user + system) a local backend has used so far; null when the server is not local. */
function backendCpuMs(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Adds up the CPU time backend `pid` spends during the work it is given; total() is null when the server is not local. */
function cpuMeter(pid: number) {
  let total: number | null = 0;
  return {
    async during(work: () => Promise<void>): Promise<void> {
      const before = backendCpuMs(pid);
      await work();
      const after = backendCpuMs(pid);
      total = total === null || before === null || after === null ? null : total + after - before;
    },
    total: () => total,
  };
}

async function prepare(database: string, ownerUrl: string) {
  const db = new pg.Client({ connectionString: ownerUrl });
  db.on('error', () => undefined); // the server stopping at the end is not news
  await db.connect();
  const wallets: { userId: string; walletId: string; email: string }[] = [];
  for (let i = 0; i < WALLETS; i++) {
    const email = `profile-${i}-${randomUUID().slice(0, 8)}@example.com`;
    const userId = (await db.query(`insert into app_public.users (email, full_name, email_verified_at) values ($1, $2, now()) returning id`, [email, `P ${i}`])).rows[0].id;
    const walletId = (await db.query(`select ledger.open_wallet($1, 'ZAR') as id`, [userId])).rows[0].id;
    await db.query(`select ledger.move('deposit', ledger.system_account('revio_clearing', 'ZAR'), $1, 1000000000000, 'funds')`, [walletId]);
    wallets.push({ userId, walletId, email });
  }
  let wallMs = 0;
  let walBytes = 0;
  const cpu = cpuMeter((await db.query('select pg_backend_pid() as pid')).rows[0].pid as number);
  const transfer = async () => {
    const from = wallets[Math.floor(Math.random() * WALLETS)];
    let to = from;
    while (to === from) to = wallets[Math.floor(Math.random() * WALLETS)];
    const t0 = performance.now();
    await db.query({
      name: 'transfer',
      text: 'select (app_private.transfer($1, $2, $3, $4, $5)).id',
      values: [from.userId, from.walletId, to.email, 1 + Math.floor(Math.random() * 100), randomUUID()],
    });
    wallMs += performance.now() - t0;
  };
  // Warm up (plans cached, tables no longer empty).
  for (let i = 0; i < 2000; i++) await transfer();
  await db.query('analyze');
  for (let i = 0; i < 200; i++) await transfer();
  const su = new URL(server.rootUrl);
  su.pathname = `/${database}`;
  const admin = new pg.Client({ connectionString: su.toString() });
  await admin.connect();
  await admin.query('select pg_stat_reset()'); // this database's function statistics
  await admin.end();
  wallMs = 0;
  // WAL written per batch (nothing else writes meanwhile: one client at a time).
  const batch = async (n: number) => {
    const lsn0 = (await db.query('select pg_current_wal_insert_lsn() as l')).rows[0].l;
    await cpu.during(async () => {
      for (let i = 0; i < n; i++) await transfer();
    });
    walBytes += Number((await db.query('select pg_current_wal_insert_lsn() - $1::pg_lsn as b', [lsn0])).rows[0].b);
  };
  return { database, db, wallets, batch, wall: () => wallMs, wal: () => walBytes, cpu: cpu.total };
}

async function report(root: pg.Client, p: Awaited<ReturnType<typeof prepare>>): Promise<Profile> {
  const { db, wallets, database } = p;
  await db.query('select pg_stat_force_next_flush()');
  await db.query('select 1');
  const statements = (
    await root.query(
      `select regexp_replace(left(query, 110), '\\s+', ' ', 'g') as query, toplevel, calls,
              total_exec_time / $1 as ms_per_transfer, mean_exec_time as mean_ms, shared_blks_hit / calls::float as hits_per_call
         from pg_stat_statements s join pg_database d on d.oid = s.dbid
        where d.datname = $2 and calls >= $1 / 2
        order by total_exec_time desc limit 40`,
      [TRANSFERS, database],
    )
  ).rows.map((r) => ({ ...r, ms_per_transfer: round(r.ms_per_transfer), mean_ms: round(r.mean_ms), hits_per_call: round(r.hits_per_call, 1), calls: Number(r.calls) }));
  const functions = (
    await db.query(
      `select schemaname || '.' || funcname as function, calls, self_time / $1 as self_ms_per_transfer, total_time / $1 as total_ms_per_transfer
         from pg_stat_user_functions where calls > 0 order by self_time desc limit 30`,
      [TRANSFERS],
    )
  ).rows.map((r) => ({ ...r, calls: Number(r.calls), self_ms_per_transfer: round(r.self_ms_per_transfer), total_ms_per_transfer: round(r.total_ms_per_transfer) }));
  const top = statements.find((s) => s.toplevel && /app_private\.transfer/.test(s.query));
  await db.query('begin');
  const explain = (
    await db.query(`explain (analyze, buffers, costs off, summary on) select (app_private.transfer($1, $2, $3, 5, $4)).id`, [
      wallets[0].userId,
      wallets[0].walletId,
      wallets[1].email,
      randomUUID(),
    ])
  ).rows.map((r) => r['QUERY PLAN'] as string);
  await db.query('commit');
  const profile = {
    wall_ms_per_transfer: round(p.wall() / TRANSFERS),
    server_cpu_ms_per_transfer: p.cpu() === null ? null : round(p.cpu()! / TRANSFERS),
    top_level_ms: round(top?.mean_ms ?? NaN),
    wal_bytes_per_transfer: Math.round(p.wal() / TRANSFERS),
    statements,
    functions,
    explain,
  };

  console.log(`\n== ${database}: per transfer, one client, ${TRANSFERS} transfers`);
  console.log(`  wall time (round trip + execution + commit): ${profile.wall_ms_per_transfer} ms`);
  console.log(`  server CPU (the backend's user + system time): ${profile.server_cpu_ms_per_transfer ?? 'n/a (not a local server)'} ms`);
  console.log(`  top-level statement execution: ${profile.top_level_ms} ms`);
  console.log(`  WAL written: ${profile.wal_bytes_per_transfer} bytes`);
  console.log('statements (pg_stat_statements, track = all; nested ones are part of their caller’s time):');
  for (const s of statements) console.log(`  ${String(s.ms_per_transfer).padStart(7)} ms/transfer  ${String(s.calls).padStart(6)} calls  ${s.hits_per_call} buffer hits/call  ${s.query}`);
  console.log('functions (track_functions = all; self time excludes what they call):');
  for (const f of functions) console.log(`  ${String(f.self_ms_per_transfer).padStart(7)} ms self ${String(f.total_ms_per_transfer).padStart(7)} ms total  ${String(f.calls).padStart(6)} calls  ${f.function}`);
  console.log('EXPLAIN (ANALYZE, BUFFERS) of one transfer:');
  for (const line of explain) console.log(`  ${line}`);
  return profile;
}

try {
  // Both databases first: creating one ends the other's connections.
  const beforeUrl = await createDatabase('pgwallet_profile_before', false);
  const afterUrl = await createDatabase('pgwallet_profile_after', true);
  const before = await prepare('pgwallet_profile_before', beforeUrl);
  const after = await prepare('pgwallet_profile_after', afterUrl);
  const root = new pg.Client({ connectionString: server.rootUrl });
  root.on('error', () => undefined);
  await root.connect();
  await root.query('create extension if not exists pg_stat_statements');
  // The reference: pgbench's TPC-B-like transaction (BEGIN, 5 statements, END)
  // on pgbench-shaped tables (scale 1) in the `after` database, the same way.
  await after.db.query(`
    create table pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
    create table pgbench_tellers (tid int not null primary key, bid int, tbalance int, filler char(84));
    create table pgbench_accounts (aid int not null primary key, bid int, abalance int, filler char(84));
    create table pgbench_branches (bid int not null primary key, bbalance int, filler char(88));
    insert into pgbench_branches (bid, bbalance) values (1, 0);
    insert into pgbench_tellers (tid, bid, tbalance) select t, 1, 0 from generate_series(1, 10) t;
    insert into pgbench_accounts (aid, bid, abalance, filler) select a, 1, 0, '' from generate_series(1, 100000) a;`);
  await after.db.query('vacuum analyze pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history');
  let tpcbWall = 0;
  let tpcbWal = 0;
  const tpcbPid = (await after.db.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  let tpcbCpu = cpuMeter(tpcbPid);
  const tpcb = async (n: number) => {
    const q = after.db;
    const lsn0 = (await q.query('select pg_current_wal_insert_lsn() as l')).rows[0].l;
    await tpcbCpu.during(async () => {
      for (let i = 0; i < n; i++) {
        const delta = Math.floor(Math.random() * 10001) - 5000;
        const aid = 1 + Math.floor(Math.random() * 100_000);
        const tid = 1 + Math.floor(Math.random() * 10);
        const t0 = performance.now();
        await q.query('begin');
        await q.query({ name: 'tpcb-1', text: 'update pgbench_accounts set abalance = abalance + $1 where aid = $2', values: [delta, aid] });
        await q.query({ name: 'tpcb-2', text: 'select abalance from pgbench_accounts where aid = $1', values: [aid] });
        await q.query({ name: 'tpcb-3', text: 'update pgbench_tellers set tbalance = tbalance + $1 where tid = $2', values: [delta, tid] });
        await q.query({ name: 'tpcb-4', text: 'update pgbench_branches set bbalance = bbalance + $1 where bid = $2', values: [delta, 1] });
        await q.query({ name: 'tpcb-5', text: 'insert into pgbench_history (tid, bid, aid, delta, mtime) values ($1, $2, $3, $4, current_timestamp)', values: [tid, 1, aid, delta] });
        await q.query('end');
        tpcbWall += performance.now() - t0;
      }
    });
    tpcbWal += Number((await q.query('select pg_current_wal_insert_lsn() - $1::pg_lsn as b', [lsn0])).rows[0].b);
  };
  await tpcb(500); // warm-up
  tpcbWall = 0;
  tpcbWal = 0;
  tpcbCpu = cpuMeter(tpcbPid); // the warm-up does not count
  await root.query('select pg_stat_statements_reset()');
  const loadBefore = loadavg();
  for (let done = 0; done < TRANSFERS; done += 250) {
    const n = Math.min(250, TRANSFERS - done);
    for (const run of done % 500 === 0 ? [() => before.batch(n), () => after.batch(n), () => tpcb(n)] : [() => tpcb(n), () => after.batch(n), () => before.batch(n)]) await run();
  }
  await new Promise((r) => setTimeout(r, 700));
  const tpcbStatements = (
    await root.query(
      `select sum(s.mean_exec_time) as ms from pg_stat_statements s join pg_database d on d.oid = s.dbid
        where d.datname = 'pgwallet_profile_after' and s.query ~ 'pgbench_' and s.toplevel`,
    )
  ).rows[0];
  const reference = {
    wall_ms_per_transaction: round(tpcbWall / TRANSFERS),
    server_cpu_ms_per_transaction: tpcbCpu.total() === null ? null : round(tpcbCpu.total()! / TRANSFERS),
    statements_ms_per_transaction: round(Number(tpcbStatements.ms)),
    wal_bytes_per_transaction: Math.round(tpcbWal / TRANSFERS),
  };
  console.log(`\n== reference: pgbench TPC-B-like (7 round trips), same client, ${TRANSFERS} transactions`);
  console.log(`  wall time: ${reference.wall_ms_per_transaction} ms; server CPU: ${reference.server_cpu_ms_per_transaction ?? 'n/a'} ms; its 5 statements' execution: ${reference.statements_ms_per_transaction} ms; WAL written: ${reference.wal_bytes_per_transaction} bytes`);
  const result = {
    transfers: TRANSFERS,
    before_migrations: BEFORE_REF ? `git ref ${BEFORE_REF}` : 'committed',
    tpcb_reference: reference,
    before: await report(root, before),
    after: await report(root, after),
    load_average_before: loadBefore,
    load_average_after: loadavg(),
    finished_at: new Date().toISOString(),
  };
  const ratio = (k: 'wall_ms_per_transfer' | 'top_level_ms' | 'server_cpu_ms_per_transfer') => round(Number(result.after[k]) / Number(result.before[k]), 2);
  console.log(`\nafter / before: wall time ${ratio('wall_ms_per_transfer')}, server CPU ${ratio('server_cpu_ms_per_transfer')}, top-level execution ${ratio('top_level_ms')}; load average ${loadBefore[0].toFixed(2)} → ${loadavg()[0].toFixed(2)}`);
  console.log(
    `transfer / TPC-B-like: server CPU before ${round(Number(result.before.server_cpu_ms_per_transfer) / Number(reference.server_cpu_ms_per_transaction), 2)}, after ${round(Number(result.after.server_cpu_ms_per_transfer) / Number(reference.server_cpu_ms_per_transaction), 2)}; execution before ${round(result.before.top_level_ms / reference.statements_ms_per_transaction, 2)}, after ${round(result.after.top_level_ms / reference.statements_ms_per_transaction, 2)}; ` +
      `WAL before ${round(result.before.wal_bytes_per_transfer / reference.wal_bytes_per_transaction, 2)}, after ${round(result.after.wal_bytes_per_transfer / reference.wal_bytes_per_transaction, 2)}`,
  );
  const path = join(here, 'results', process.env.PROFILE_NAME ?? 'ledger-profile.json');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ ...result, ratios: { wall: ratio('wall_ms_per_transfer'), server_cpu: ratio('server_cpu_ms_per_transfer'), top_level: ratio('top_level_ms') } }, null, 2)}\n`);
  console.log(`written to ${path}`);
  await before.db.end();
  await after.db.end();
  await root.end();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await server.stop();
}

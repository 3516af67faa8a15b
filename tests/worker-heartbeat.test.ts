// Issue 14: a worker killed with SIGKILL mid-job leaves the job locked; the
// other workers notice its heartbeat stopped and free the lock by themselves
// (sql/worker/heartbeats.sql, src/worker/heartbeat.ts), while a job a live
// worker is still running is left alone however long it takes.
import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeLogger } from '../src/logger.ts';
import { startWorker, type Worker } from '../src/worker/runner.ts';
import { createOwnDatabase, type OwnDatabase } from './helpers/database.ts';

let db: OwnDatabase;
let owner: pg.Pool;
let worker: Worker | undefined;
let child: ChildProcess | undefined;
const previousStale = process.env.WORKER_STALE_AFTER_SECONDS;

beforeAll(async () => {
  db = await createOwnDatabase('heartbeat');
  owner = new pg.Pool({ connectionString: db.ownerUrl, max: 4 });
  process.env.WORKER_STALE_AFTER_SECONDS = '10';
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await worker?.stop();
  await owner.end();
  await db.drop();
  if (previousStale === undefined) delete process.env.WORKER_STALE_AFTER_SECONDS;
  else process.env.WORKER_STALE_AFTER_SECONDS = previousStale;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A ledger_expire_holds job that blocks (the holds table is locked by `blocker`) once a worker takes it. */
async function blockedJob(blocker: pg.PoolClient): Promise<string> {
  await blocker.query('begin');
  await blocker.query('lock table ledger.holds in access exclusive mode');
  return (await owner.query(`select id from graphile_worker.add_job('ledger_expire_holds', '{}'::json, max_attempts := 3)`)).rows[0].id;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

const jobRow = async (id: string) => (await owner.query('select locked_by, attempts from graphile_worker.jobs where id = $1', [id])).rows[0];

it('frees the jobs of a worker killed with SIGKILL, and the job then runs to completion on another worker', async () => {
  const blocker = await owner.connect();
  const id = await blockedJob(blocker);
  child = spawn(process.execPath, ['tests/helpers/worker-process.ts', db.workerUrl], { env: { ...process.env, WORKER_STALE_AFTER_SECONDS: '10' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const dead = await waitFor('the child worker locks the job', 30_000, async () => (await jobRow(id))?.locked_by ?? undefined);
  // Its first heartbeat is sent as its pool starts, concurrently with the first job fetch.
  const pid = await waitFor('the child worker heartbeats', 10_000, async () => (await owner.query('select pid from app_private.worker_heartbeats where worker_id = $1', [dead])).rows[0]?.pid);
  expect(pid).toBe(child.pid);
  child.kill('SIGKILL');
  await new Promise((resolve) => child!.once('exit', resolve));
  await blocker.query('rollback');
  blocker.release();
  const killedAt = Date.now();

  // A second worker (in this process) heartbeats too, and releases stale locks every 5 s.
  worker = await startWorker({ connectionString: db.workerUrl, logger: makeLogger('silent'), cron: false, concurrency: 1 });
  expect((await jobRow(id)).locked_by).toBe(dead); // nothing freed before the heartbeat is stale
  await waitFor('the job completes', 40_000, async () => ((await jobRow(id)) === undefined ? true : undefined));
  const recoverySeconds = (Date.now() - killedAt) / 1000;
  expect(recoverySeconds).toBeGreaterThanOrEqual(9); // not before WORKER_STALE_AFTER_SECONDS
  expect(recoverySeconds).toBeLessThan(40);
  const recoveries = await owner.query('select worker_ids, jobs from app_private.worker_lock_recoveries');
  expect(recoveries.rows).toEqual([{ worker_ids: [dead], jobs: 1 }]);
  const snapshot = (await owner.query('select app_private.metrics_snapshot(false) as s')).rows[0].s;
  expect(snapshot).toMatchObject({ workers_alive: 1, jobs_locked_by_dead_workers: 0, worker_lock_recoveries: 1 });
}, 90_000);

it('leaves a long job of a live worker locked, and reports a dead worker’s locks as stale until released', async () => {
  const blocker = await owner.connect();
  const id = await blockedJob(blocker);
  const mine = await waitFor('the live worker locks the job', 20_000, async () => (await jobRow(id))?.locked_by ?? undefined);
  await sleep(12_000); // longer than WORKER_STALE_AFTER_SECONDS, while its heartbeat goes on
  expect(Number((await owner.query(`select app_private.release_stale_worker_locks(interval '10 seconds') as n`)).rows[0].n)).toBe(0);
  expect((await jobRow(id)).locked_by).toBe(mine);
  await blocker.query('rollback');
  blocker.release();
  await waitFor('the job completes', 20_000, async () => ((await jobRow(id)) === undefined ? true : undefined));

  // A lock held by a pool that never heartbeated (or long ago) counts as dead once old enough.
  await owner.query(`select graphile_worker.add_job('ledger_expire_holds', '{}'::json, run_at := now() + interval '1 hour')`);
  await owner.query(`update graphile_worker._private_jobs set locked_by = 'gone-pool', locked_at = now() - interval '3 minutes' where run_at > now() + interval '30 minutes'`);
  expect((await owner.query('select app_private.metrics_snapshot(false) as s')).rows[0].s).toMatchObject({ jobs_locked_by_dead_workers: 1 });
  expect(Number((await owner.query(`select app_private.release_stale_worker_locks() as n`)).rows[0].n)).toBe(1);
  expect((await owner.query('select app_private.metrics_snapshot(false) as s')).rows[0].s).toMatchObject({ jobs_locked_by_dead_workers: 0 });
  await expect(owner.query(`select app_private.release_stale_worker_locks(interval '1 second')`)).rejects.toMatchObject({ code: 'PW701' });
}, 90_000);

it('frees a job a live worker still holds but no longer runs (its outcome was lost while PostgreSQL restarted)', async () => {
  const live = (await owner.query(`select worker_id from app_private.worker_heartbeats where seen_at > now() - interval '10 seconds'`)).rows[0].worker_id;
  const job = (await owner.query(`select id from graphile_worker.add_job('ledger_expire_holds', '{}'::json, run_at := now() + interval '1 hour')`)).rows[0].id;
  await owner.query(`update graphile_worker._private_jobs set locked_by = $1, locked_at = now() - interval '20 seconds' where id = $2`, [live, job]);
  expect(Number((await owner.query(`select app_private.release_stale_worker_locks(interval '10 seconds') as n`)).rows[0].n)).toBe(1);
  expect((await jobRow(job)).locked_by).toBeNull();
  expect((await owner.query(`select worker_ids from app_private.worker_lock_recoveries order by id desc limit 1`)).rows[0].worker_ids).toEqual(['orphaned on a live worker']);
  await owner.query('delete from graphile_worker._private_jobs where id = $1', [job]);
});

it('reads WORKER_STALE_AFTER_SECONDS: heartbeats every sixth, releases every half, at least 10 s', async () => {
  const { heartbeatSettingsFrom } = await import('../src/worker/heartbeat.ts');
  expect(heartbeatSettingsFrom({})).toEqual({ everyMs: 5_000, releaseEveryMs: 15_000, staleAfterSeconds: 30 });
  expect(heartbeatSettingsFrom({ WORKER_STALE_AFTER_SECONDS: '60' })).toEqual({ everyMs: 10_000, releaseEveryMs: 30_000, staleAfterSeconds: 60 });
  expect(() => heartbeatSettingsFrom({ WORKER_STALE_AFTER_SECONDS: '5' })).toThrow(/WORKER_STALE_AFTER_SECONDS/);
});

// The ledger's periodic jobs, run by a real graphile-worker against the test
// database: hold expiry and the idempotency records' purge.
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { makeLogger } from '../src/logger.ts';
import { makeCronItems } from '../src/worker/tasks/index.ts';
import { startWorker, workerSettingsFrom, type Worker } from '../src/worker/runner.ts';
import { accountState, createUser, fund, ownerPool } from './helpers/ledger.ts';

let db: pg.Pool;
let worker: Worker;
beforeAll(async () => {
  db = ownerPool();
  // Cron is off here (it ticks once a minute); the jobs are queued by hand.
  worker = await startWorker({ connectionString: inject('workerUrl'), logger: makeLogger('silent'), cron: false, concurrency: 2 });
});
afterAll(async () => {
  await worker.stop();
  await db.end();
});

async function runJob(task: string): Promise<void> {
  const { rows } = await db.query(`select id from graphile_worker.add_job($1, '{}'::json, max_attempts := 1)`, [task]);
  const id = rows[0].id;
  for (let i = 0; i < 200; i++) {
    const job = await db.query(`select last_error from graphile_worker.jobs where id = $1`, [id]);
    if (job.rowCount === 0) return; // completed jobs are deleted
    if (job.rows[0].last_error) throw new Error(`${task} failed: ${job.rows[0].last_error}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${task} did not run within 5 s`);
}

it('ledger_expire_holds returns overdue holds to the available balance', async () => {
  const user = await createUser(db, 'worker-exp');
  await fund(db, user.walletId, 500);
  const overdue = (await db.query(`select ledger.place_hold($1, 300, now() + interval '50 milliseconds') as id`, [user.walletId])).rows[0].id;
  const current = (await db.query(`select ledger.place_hold($1, 100, now() + interval '1 hour') as id`, [user.walletId])).rows[0].id;
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(await accountState(db, user.walletId)).toMatchObject({ held: 400n, available: 100n });

  await runJob('ledger_expire_holds');
  const statuses = await db.query(`select id, status from ledger.holds where id = any($1)`, [[overdue, current]]);
  expect(Object.fromEntries(statuses.rows.map((r) => [r.id, r.status]))).toEqual({ [overdue]: 'expired', [current]: 'placed' });
  expect(await accountState(db, user.walletId)).toMatchObject({ balance: 500n, held: 100n, available: 400n });
});

it('ledger_purge_idempotency deletes records older than the window', async () => {
  const [a, b] = await Promise.all([createUser(db, 'worker-purge'), createUser(db, 'worker-purge-to')]);
  await fund(db, a.walletId, 100);
  for (const key of ['stale', 'fresh']) {
    await db.query(`select app_private.transfer($1, $2, $3, 1, $4)`, [a.userId, a.walletId, b.email, key]);
  }
  await db.query(`update app_private.idempotency_records set created_at = now() - interval '7 days 1 minute' where caller = $1 and key = 'stale'`, [`user:${a.userId}`]);
  await runJob('ledger_purge_idempotency');
  const left = await db.query(`select key from app_private.idempotency_records where caller = $1`, [`user:${a.userId}`]);
  expect(left.rows.map((r) => r.key)).toEqual(['fresh']);
});

it('schedules the periodic tasks and reads its settings from the environment', () => {
  expect(makeCronItems().map((item) => [item.identifier, item.task])).toEqual([
    ['ledger_expire_holds', 'ledger_expire_holds'],
    ['worker_release_stale_locks', 'worker_release_stale_locks'],
    ['ledger_purge_idempotency', 'ledger_purge_idempotency'],
    ['voting_close_events', 'voting_close_events'],
    ['voting_snapshot_leaderboards', 'voting_snapshot_leaderboards'],
    ['revio.purge_deliveries', 'revio.purge_deliveries'],
    ['commerce_expire_reservations', 'commerce_expire_reservations'],
  ]);
  const defaults = { concurrency: 2, idempotencyRetentionDays: 7, deliveryRetentionDays: 90, badDeliveryRetentionDays: 7 };
  expect(workerSettingsFrom({})).toEqual(defaults);
  expect(workerSettingsFrom({ WORKER_CONCURRENCY: '4', IDEMPOTENCY_RETENTION_DAYS: '30', REVIO_DELIVERY_RETENTION_DAYS: '365', REVIO_BAD_DELIVERY_RETENTION_DAYS: '2' }))
    .toEqual({ concurrency: 4, idempotencyRetentionDays: 30, deliveryRetentionDays: 365, badDeliveryRetentionDays: 2 });
  expect(() => workerSettingsFrom({ IDEMPOTENCY_RETENTION_DAYS: '0' })).toThrow(/IDEMPOTENCY_RETENTION_DAYS/);
});

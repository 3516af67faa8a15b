// app_private.metrics_snapshot (sql/metrics/snapshot.sql): what /metrics reads
// from the database. The API's login role may call it; nothing else may, and
// it answers with counts and ages only.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOwnDatabase, type OwnDatabase } from './helpers/database.ts';
import { sqlstateOf } from './helpers/sql.ts';

let db: OwnDatabase;
let auth: pg.Client;
let owner: pg.Client;
beforeAll(async () => {
  db = await createOwnDatabase('metrics_snapshot');
  auth = new pg.Client({ connectionString: db.authUrl });
  owner = new pg.Client({ connectionString: db.ownerUrl });
  await Promise.all([auth.connect(), owner.connect()]);
});
afterAll(async () => {
  await Promise.all([auth.end(), owner.end()]);
  await db.drop();
});

const snapshot = async (checks: boolean) => (await auth.query('select app_private.metrics_snapshot($1) as s', [checks])).rows[0].s;

describe('app_private.metrics_snapshot', () => {
  it('answers the authenticator with the cheap part, and the ledger checks on request, all zero on a clean ledger', async () => {
    const cheap = await snapshot(false);
    expect(cheap).toEqual({ jobs: [], deposits_open: [], withdrawals_open: [], discrepancies_open: 0, reversals_unreviewed: {}, chargeback_receivable: {}, workers_alive: 0, jobs_locked_by_dead_workers: 0, worker_lock_recoveries: 0 });
    const full = await snapshot(true);
    expect(full).toMatchObject({
      trial_balance_nonzero_currencies: 0,
      unbalanced_entries: 0,
      balance_drift_rows: 0,
      ledger_guards_disabled: 0,
      deposits_needing_attention: 0,
      withdrawals_needing_attention: 0,
      deposits_by_status: {},
      withdrawals_by_status: {},
    });
    expect(full.ledger_guards_enabled).toBeGreaterThan(0);
  });

  it('counts queued, scheduled and dead jobs per task with the age of the oldest ready one', async () => {
    await owner.query(`select graphile_worker.add_job('metrics.probe', '{}'::json, run_at := now() - interval '30 seconds')`);
    await owner.query(`select graphile_worker.add_job('metrics.probe', '{}'::json, run_at := now() + interval '1 hour')`);
    const dead = await owner.query(`select id from graphile_worker.add_job('metrics.probe', '{}'::json, max_attempts := 1)`);
    await owner.query(`select graphile_worker.permanently_fail_jobs(array[$1::bigint], 'probe')`, [dead.rows[0].id]);
    const { jobs } = await snapshot(false);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ task: 'metrics.probe', ready: 1, scheduled: 1, running: 0, dead: 1 });
    expect(jobs[0].oldest_ready_seconds).toBeGreaterThanOrEqual(29);
  });

  it('is not for API roles or auditors', async () => {
    for (const role of ['app_anonymous', 'app_user', 'app_admin', 'app_auditor'] as const) {
      expect(await sqlstateOf({ role }, 'select app_private.metrics_snapshot(true)')).toBe('42501');
    }
  });
});

// Issue 14, "the checks": each fault the monitoring claims to detect is planted
// by a superuser (balance drift, an unbalanced entry, a disabled guard, a
// stuck deposit, a dead job, a job locked by a dead worker) and must show in
// the audit views, in app_private.metrics_snapshot and on /metrics, and the
// alert rule meant for it (ops/prometheus/alerts.yml) must select something
// when its expression is evaluated over that scrape (tests/helpers/promql.ts;
// `for:` durations aside). Each fault is undone after its check, and the
// rule must then go quiet, so no check passes on an earlier fault's residue.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../src/metrics/registry.ts';
import { fund } from './helpers/ledger.ts';
import { createDeposit, eventually, signUp, startPaymentsStack, type PaymentsStack, type Person } from './helpers/payments.ts';
import { parsePrometheusText, sampleValue, type Sample } from './helpers/prometheus.ts';
import { evaluate } from './helpers/promql.ts';

const rules = new Map(
  (parse(readFileSync('ops/prometheus/alerts.yml', 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups
    .flatMap((g) => g.rules)
    .map((r) => [r.alert, r.expr]),
);

let stack: PaymentsStack;
let root: pg.Client;
let person: Person;
beforeAll(async () => {
  // No worker (nothing repairs or runs what we plant); ledger checks on every read.
  stack = await startPaymentsStack('monitoring_faults', { metrics: createMetrics(), ledgerCheckIntervalSeconds: 0.001, worker: false });
  root = new pg.Client({ connectionString: stack.db.rootUrl });
  await root.connect();
  person = await signUp(stack, 'monitored');
  await fund(stack.owner, person.walletId, 10_000);
}, 60_000);
afterAll(async () => {
  await root?.end();
  await stack?.close();
});

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`${stack.url}/metrics`);
  expect(response.status).toBe(200);
  return parsePrometheusText(await response.text());
}

const fires = (alert: string, samples: Sample[]) => {
  const expr = rules.get(alert);
  if (!expr) throw new Error(`no alert rule ${alert}`);
  return evaluate(expr, samples).length > 0;
};

/** Scrapes until the rule fires (the snapshot is re-read at most once a second), then returns that scrape. */
const scrapeUntil = (alert: string, firing: boolean) =>
  eventually(async () => {
    const samples = await scrape();
    return fires(alert, samples) === firing ? samples : undefined;
  }, 10_000, `${alert} ${firing ? 'firing' : 'quiet'}`);

const snapshot = async () => (await root.query('select app_private.metrics_snapshot(true) as s')).rows[0].s;
/** As a superuser: writes that skip every trigger (the guards included), as a bad migration or a manual fix could. */
const behindTheGuards = async (...statements: [string, unknown[]][]) => {
  await root.query('begin');
  try {
    await root.query('set local session_replication_role = replica');
    for (const [sql, params] of statements) await root.query(sql, params);
    await root.query('commit');
  } catch (error) {
    await root.query('rollback');
    throw error;
  }
};

describe('planted faults reach the audit views, metrics_snapshot, /metrics and the alert rule', () => {
  it('starts clean: no rule of ours fires', async () => {
    const samples = await scrapeUntil('PgwalletLedgerInvariantBroken', false);
    for (const alert of ['PgwalletDeadLetterJobs', 'PgwalletDepositsNotSentToRevio', 'PgwalletJobsLockedByDeadWorkers', 'PgwalletPaymentsNeedAttention']) {
      expect(fires(alert, samples), alert).toBe(false);
    }
  });

  it('balance drift: a wallet whose stored balance disagrees with its postings', async () => {
    await behindTheGuards(['update ledger.accounts set balance = balance + 7 where id = $1', [person.walletId]]);
    const drift = await root.query('select account_id, stored_balance::text, posted_balance::text from audit.balance_drift');
    expect(drift.rows).toEqual([{ account_id: person.walletId, stored_balance: '10007', posted_balance: '10000' }]);
    expect(await snapshot()).toMatchObject({ balance_drift_rows: 1, trial_balance_nonzero_currencies: 1 });
    const samples = await scrapeUntil('PgwalletLedgerInvariantBroken', true);
    expect(sampleValue(samples, 'pgwallet_ledger_balance_drift_rows')).toBe(1);
    await behindTheGuards(['update ledger.accounts set balance = balance - 7 where id = $1', [person.walletId]]);
    await scrapeUntil('PgwalletLedgerInvariantBroken', false);
  });

  it('an unbalanced entry: a posting changed so its entry no longer sums to zero', async () => {
    const posting = (await root.query('select id, entry_id from ledger.postings where account_id = $1 limit 1', [person.walletId])).rows[0];
    // Posting and balance move together, so only the entry is wrong (no drift).
    await behindTheGuards(['update ledger.postings set amount = amount + 5, balance_after = balance_after + 5 where id = $1', [posting.id]],
                          ['update ledger.accounts set balance = balance + 5 where id = $1', [person.walletId]]);
    const unbalanced = await root.query('select entry_id, total::text from audit.unbalanced_entries');
    expect(unbalanced.rows).toEqual([{ entry_id: posting.entry_id, total: '5' }]);
    expect(await snapshot()).toMatchObject({ unbalanced_entries: 1, balance_drift_rows: 0 });
    const samples = await scrapeUntil('PgwalletLedgerInvariantBroken', true);
    expect(sampleValue(samples, 'pgwallet_ledger_unbalanced_entries')).toBe(1);
    await behindTheGuards(['update ledger.postings set amount = amount - 5, balance_after = balance_after - 5 where id = $1', [posting.id]],
                          ['update ledger.accounts set balance = balance - 5 where id = $1', [person.walletId]]);
    await scrapeUntil('PgwalletLedgerInvariantBroken', false);
  });

  it('a disabled guard trigger', async () => {
    const guard = (await root.query('select table_name, trigger_name from audit.ledger_guards where enabled order by 1, 2 limit 1')).rows[0];
    expect(guard).toBeDefined();
    const before = (await snapshot()).ledger_guards_enabled;
    await root.query(`alter table ${guard.table_name} disable trigger ${pg.escapeIdentifier(guard.trigger_name)}`);
    try {
      expect((await root.query('select trigger_name from audit.ledger_guards where not enabled')).rows).toEqual([{ trigger_name: guard.trigger_name }]);
      expect(await snapshot()).toMatchObject({ ledger_guards_disabled: 1, ledger_guards_enabled: before - 1 });
      const samples = await scrapeUntil('PgwalletLedgerInvariantBroken', true);
      expect(sampleValue(samples, 'pgwallet_ledger_guards_disabled')).toBe(1);
    } finally {
      await root.query(`alter table ${guard.table_name} enable trigger ${pg.escapeIdentifier(guard.trigger_name)}`);
    }
    await scrapeUntil('PgwalletLedgerInvariantBroken', false);
  });

  it('a stuck deposit: pending (never sent to Revio) for over 10 minutes', async () => {
    const created = await createDeposit(stack, person, 2_500);
    const id = created.data.createDeposit.result.rowId;
    // The timestamps trigger keeps created_at: go behind it.
    await behindTheGuards([`update app_public.deposits set created_at = now() - interval '11 minutes' where id = $1`, [id]]);
    const open = (await snapshot()).deposits_open;
    expect(open).toEqual([expect.objectContaining({ status: 'pending', count: 1 })]);
    expect(open[0].oldest_seconds).toBeGreaterThan(600);
    const samples = await scrapeUntil('PgwalletDepositsNotSentToRevio', true);
    expect(sampleValue(samples, 'pgwallet_deposit_oldest_open_age_seconds', { status: 'pending' })).toBeGreaterThan(600);
    await root.query(`update app_public.deposits set status = 'cancelled' where id = $1`, [id]);
    await root.query(`delete from graphile_worker._private_jobs where key = $1`, [`deposit:${id}`]);
    await scrapeUntil('PgwalletDepositsNotSentToRevio', false);
  });

  it('a dead job: out of attempts, with the deposit it was for', async () => {
    const created = await createDeposit(stack, person, 3_000);
    const id = created.data.createDeposit.result.rowId;
    await root.query(`update graphile_worker._private_jobs set attempts = max_attempts, last_error = 'planted' where key = $1`, [`deposit:${id}`]);
    const dead = await root.query('select task, deposit_id, last_error from audit.dead_jobs');
    expect(dead.rows).toEqual([{ task: 'revio.create_purchase', deposit_id: id, last_error: 'planted' }]);
    // Other jobs may wait in the queue (a sign-up's email, say); only this one is dead.
    expect((await snapshot()).jobs.filter((j: { dead: number }) => j.dead > 0)).toEqual([expect.objectContaining({ task: 'revio.create_purchase', dead: 1 })]);
    const samples = await scrapeUntil('PgwalletDeadLetterJobs', true);
    expect(sampleValue(samples, 'pgwallet_dead_letter_jobs', { task: 'revio.create_purchase' })).toBe(1);
    await root.query(`delete from graphile_worker._private_jobs where key = $1`, [`deposit:${id}`]);
    await root.query(`update app_public.deposits set status = 'cancelled' where id = $1`, [id]);
    await scrapeUntil('PgwalletDeadLetterJobs', false);
  });

  it('a job still locked by a worker that stopped heartbeating over 2 minutes ago', async () => {
    const job = (await root.query(`select id from graphile_worker.add_job('ledger_expire_holds', '{}'::json)`)).rows[0].id;
    await root.query(`update graphile_worker._private_jobs set locked_by = 'killed-pool', locked_at = now() - interval '3 minutes' where id = $1`, [job]);
    await root.query(`insert into app_private.worker_heartbeats (worker_id, hostname, pid, seen_at) values ('killed-pool', 'h', 1, now() - interval '3 minutes')`);
    expect((await root.query(`select worker_id, jobs::int from app_private.stale_job_lockers(interval '2 minutes')`)).rows).toEqual([{ worker_id: 'killed-pool', jobs: 1 }]);
    expect(await snapshot()).toMatchObject({ jobs_locked_by_dead_workers: 1, workers_alive: 0 });
    const samples = await scrapeUntil('PgwalletJobsLockedByDeadWorkers', true);
    expect(sampleValue(samples, 'pgwallet_jobs_locked_by_dead_workers')).toBe(1);
    expect(fires('PgwalletNoLiveWorker', samples)).toBe(true);
    expect(Number((await root.query('select app_private.release_stale_worker_locks() as n')).rows[0].n)).toBe(1);
    await root.query('delete from graphile_worker._private_jobs where id = $1', [job]);
    await scrapeUntil('PgwalletJobsLockedByDeadWorkers', false);
  });
});

describe('the PromQL evaluator', () => {
  const s = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });
  const samples = [s('a', { task: 'x', instance: '1' }, 2), s('a', { task: 'x', instance: '2' }, 2), s('a', { task: 'y', instance: '1' }, 0), s('b', {}, 0)];
  it('aggregates, filters by comparison and label matchers, and unions with or', () => {
    expect(evaluate('sum(max by (task) (a)) > 1', samples)).toEqual([{ labels: {}, value: 2 }]);
    expect(evaluate('max by (task) (a) > 1', samples)).toEqual([{ labels: { task: 'x' }, value: 2 }]);
    expect(evaluate('max(a{task="y"}) > 0 or max(b) > 0', samples)).toEqual([]);
    expect(evaluate('max(a{task=~"x|z"}) > 0 or max(b) == 0', samples)).toEqual([{ labels: {}, value: 2 }]);
    expect(() => evaluate('rate(a[5m]) > 0', samples)).toThrow();
  });
});

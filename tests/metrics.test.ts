// /metrics over real HTTP: the API and the worker share one registry (as under
// `npm start`), and a deposit paid through the sandbox moves the counters of
// every layer it crosses; the database gauges and ledger invariants are read
// through app_private.metrics_snapshot. Then: how /metrics is protected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsSettingsFrom } from '../src/metrics/http.ts';
import { createMetrics } from '../src/metrics/registry.ts';
import { startTestApi } from './helpers/api.ts';
import { createDeposit, depositRow, eventually, fundByDeposit, postWebhook, signUp, startPaymentsStack, type PaymentsStack } from './helpers/payments.ts';
import { parsePrometheusText, sampleValue, type Sample } from './helpers/prometheus.ts';

let stack: PaymentsStack;
beforeAll(async () => {
  // Ledger checks on every read (at most once a second), so the test sees them move.
  stack = await startPaymentsStack('metrics', { metrics: createMetrics(), ledgerCheckIntervalSeconds: 0.001 });
});
afterAll(() => stack?.close());

async function scrape(url = stack.url, headers: Record<string, string> = {}): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return parsePrometheusText(await response.text());
}

describe('/metrics after a deposit', () => {
  it('counts the GraphQL mutation, the job, the webhook and the HTTP requests, and the gauges follow the database', async () => {
    const before = await scrape();
    const v = (samples: Sample[], name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels) ?? 0;

    const person = await signUp(stack, 'metrics');
    const depositId = await fundByDeposit(stack, person, 12_345);
    expect((await depositRow(stack, depositId)).status).toBe('paid');
    // One more, left open, for the open-deposit gauges.
    const open = await createDeposit(stack, person, 5_000);
    await eventually(async () => (await depositRow(stack, open.data.createDeposit.result.rowId)).status === 'awaiting_payment', 10_000, 'second deposit awaiting payment');
    // A forged delivery: recorded as bad_signature.
    expect((await postWebhook(stack, { event_type: 'purchase.paid', id: 'forged' }, 'garbage')).status).toBe(401);

    // The job's counter moves when the job returns, just after the deposit row
    // changed inside it: wait for both, not only for the row.
    const after = await eventually(async () => {
      const s = await scrape();
      const jobsDone = v(s, 'pgwallet_jobs_total', { task: 'revio.create_purchase', outcome: 'success' })
        - v(before, 'pgwallet_jobs_total', { task: 'revio.create_purchase', outcome: 'success' });
      return v(s, 'pgwallet_deposits', { status: 'paid' }) >= 1 && jobsDone >= 2 ? s : undefined;
    }, 10_000, 'paid deposit in the gauges, both create_purchase jobs counted');

    const moved = (name: string, labels: Record<string, string>) => v(after, name, labels) - v(before, name, labels);
    expect(moved('pgwallet_graphql_operations_total', { operation: 'createDeposit', type: 'mutation', outcome: 'success' })).toBe(2);
    expect(moved('pgwallet_graphql_operations_total', { operation: 'register', type: 'mutation', outcome: 'success' })).toBe(1);
    expect(moved('pgwallet_graphql_operation_duration_seconds_count', { operation: 'createDeposit' })).toBe(2);
    expect(moved('pgwallet_jobs_total', { task: 'revio.create_purchase', outcome: 'success' })).toBe(2);
    expect(moved('pgwallet_job_duration_seconds_count', { task: 'revio.create_purchase' })).toBe(2);
    expect(moved('pgwallet_webhook_deliveries_total', { event_type: 'purchase.paid', outcome: 'applied' })).toBe(1);
    expect(moved('pgwallet_webhook_deliveries_total', { event_type: 'unverified', outcome: 'bad_signature' })).toBe(1);
    expect(moved('pgwallet_http_request_duration_seconds_count', { route: '/graphql', method: 'POST', status_code: '200' })).toBeGreaterThanOrEqual(3);
    expect(moved('pgwallet_http_request_duration_seconds_count', { route: '/webhooks/revio', status_code: '200' })).toBeGreaterThanOrEqual(1);
    // The raw URL is never a label.
    expect(after.some((s) => Object.values(s.labels).some((value) => value.includes(depositId)))).toBe(false);

    expect(v(after, 'pgwallet_metrics_snapshot_up')).toBe(1);
    expect(v(after, 'pgwallet_deposits', { status: 'paid' })).toBe(1);
    expect(v(after, 'pgwallet_deposits', { status: 'awaiting_payment' })).toBe(1);
    expect(v(after, 'pgwallet_deposit_oldest_open_age_seconds', { status: 'awaiting_payment' })).toBeGreaterThanOrEqual(0);
    expect(sampleValue(after, 'pgwallet_deposit_oldest_open_age_seconds', { status: 'pending' })).toBe(0);
    for (const invariant of ['pgwallet_ledger_trial_balance_nonzero_currencies', 'pgwallet_ledger_unbalanced_entries', 'pgwallet_ledger_balance_drift_rows', 'pgwallet_ledger_guards_disabled']) {
      expect(sampleValue(after, invariant), invariant).toBe(0);
    }
    expect(v(after, 'pgwallet_ledger_guards_enabled')).toBeGreaterThan(0);
    expect(v(after, 'pgwallet_ledger_check_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(v(after, 'pgwallet_reconciliation_discrepancies_open')).toBe(0);
    expect(sampleValue(after, 'pgwallet_db_pool_max_clients', { pool: 'api' })).toBe(20);
    expect(sampleValue(after, 'pgwallet_db_pool_max_clients', { pool: 'worker' })).toBe(10); // concurrency 4 × 2 + 2 (src/worker/runner.ts)
    expect(v(after, 'pgwallet_db_pool_clients', { pool: 'api' })).toBeGreaterThan(0);
    expect(v(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('reports scheduled and dead jobs per task, and counts job outcomes', async () => {
    await stack.owner.query(`select graphile_worker.add_job('metrics.later', '{}'::json, run_at := now() + interval '1 hour')`);
    const samples = await eventually(async () => {
      const s = await scrape();
      return sampleValue(s, 'pgwallet_job_queue_scheduled', { task: 'metrics.later' }) === 1 ? s : undefined;
    }, 5_000, 'scheduled job in the gauges');
    expect(sampleValue(samples, 'pgwallet_job_queue_ready', { task: 'metrics.later' })).toBe(0);
    expect(sampleValue(samples, 'pgwallet_dead_letter_jobs', { task: 'metrics.later' })).toBe(0);

    // A job that succeeds, and one that fails on its only attempt (a deposit id that is not a uuid): a dead letter.
    await stack.owner.query(`select graphile_worker.add_job('ledger_expire_holds', '{}'::json, max_attempts := 1)`);
    await stack.owner.query(`select graphile_worker.add_job('revio.create_purchase', '{"deposit_id":"not-a-uuid"}'::json, max_attempts := 1)`);
    const done = await eventually(async () => {
      const s = await scrape();
      return (sampleValue(s, 'pgwallet_jobs_total', { task: 'ledger_expire_holds', outcome: 'success' }) ?? 0) >= 1
        && sampleValue(s, 'pgwallet_dead_letter_jobs', { task: 'revio.create_purchase' }) === 1 ? s : undefined;
    }, 10_000, 'jobs counted');
    expect(sampleValue(done, 'pgwallet_jobs_total', { task: 'revio.create_purchase', outcome: 'failed' })).toBe(1);
    expect(sampleValue(done, 'pgwallet_jobs_total', { task: 'revio.create_purchase', outcome: 'retry' })).toBeUndefined();
    expect(sampleValue(done, 'pgwallet_job_duration_seconds_count', { task: 'ledger_expire_holds' })).toBeGreaterThanOrEqual(1);
  });
});

describe('/metrics protection', () => {
  it('with METRICS_TOKEN answers only the bearer of that token', async () => {
    const token = 'metrics-token-for-tests-0123456789';
    const api = await startTestApi({ metricsSettings: { token, port: undefined, host: '127.0.0.1', enabled: true } });
    try {
      expect((await fetch(`${api.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${api.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
      expect((await fetch(`${api.url}/metrics`, { headers: { authorization: token } })).status).toBe(401);
      const samples = await scrape(api.url, { authorization: `Bearer ${token}` });
      expect(sampleValue(samples, 'pgwallet_metrics_snapshot_up')).toBe(1);
    } finally {
      await api.close();
    }
  });

  it('with METRICS_PORT is served only on its own listener', async () => {
    const api = await startTestApi({ metricsSettings: { token: undefined, port: 0, host: '127.0.0.1', enabled: true } });
    try {
      expect(api.api.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(api.api.metricsUrl).not.toBe(api.url);
      expect((await fetch(`${api.url}/metrics`)).status).toBe(404);
      expect(sampleValue(await scrape(api.api.metricsUrl), 'pgwallet_metrics_snapshot_up')).toBe(1);
      expect((await fetch(`${api.api.metricsUrl}/graphql`)).status).toBe(404);
    } finally {
      await api.close();
    }
  });

  it('is off in production unless a token or a port is configured', async () => {
    expect(metricsSettingsFrom({ NODE_ENV: 'production' }).enabled).toBe(false);
    expect(metricsSettingsFrom({ NODE_ENV: 'production', METRICS_PORT: '9464' })).toMatchObject({ enabled: true, port: 9464, host: '127.0.0.1' });
    expect(metricsSettingsFrom({ NODE_ENV: 'production', METRICS_TOKEN: 'x'.repeat(24) }).enabled).toBe(true);
    expect(metricsSettingsFrom({ NODE_ENV: 'development' }).enabled).toBe(true);
    expect(() => metricsSettingsFrom({ METRICS_TOKEN: 'short' })).toThrow(/16 characters/);
    const api = await startTestApi({ metricsSettings: metricsSettingsFrom({ NODE_ENV: 'production' }) });
    try {
      expect((await fetch(`${api.url}/metrics`)).status).toBe(404);
    } finally {
      await api.close();
    }
  });
});

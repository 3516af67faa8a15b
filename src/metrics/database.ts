// Gauges read from PostgreSQL on scrape, through app_private.metrics_snapshot
// (sql/metrics/snapshot.sql), which the API's authenticator may execute. The
// cheap part (job queue, open payments, open discrepancies) is read at most
// once a second however many scrapers ask; the ledger checks (whole-table
// reads) at most every METRICS_LEDGER_CHECK_INTERVAL_SECONDS (default 300;
// 0 turns them off). A failed read sets pgwallet_metrics_snapshot_up to 0 and
// keeps the last values (alerts fire on the 0, not on stale numbers).
import { Gauge } from 'prom-client';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from './registry.ts';

interface JobRow {
  task: string;
  ready: number;
  scheduled: number;
  running: number;
  dead: number;
  oldest_ready_seconds: number;
}
interface OpenRow {
  status: string;
  count: number;
  oldest_seconds: number;
}
interface Snapshot {
  jobs: JobRow[];
  deposits_open: OpenRow[];
  withdrawals_open: OpenRow[];
  discrepancies_open: number;
  /** Unreviewed reversals by kind (chargeback, provider_refund). */
  reversals_unreviewed?: Record<string, number>;
  /** Minor units users owe through chargebacks, by currency. */
  chargeback_receivable?: Record<string, number>;
  workers_alive: number;
  jobs_locked_by_dead_workers: number;
  worker_lock_recoveries: number;
}
interface LedgerChecks {
  deposits_by_status: Record<string, number>;
  withdrawals_by_status: Record<string, number>;
  deposits_needing_attention: number;
  withdrawals_needing_attention: number;
  trial_balance_nonzero_currencies: number;
  unbalanced_entries: number;
  balance_drift_rows: number;
  ledger_guards_enabled: number;
  ledger_guards_disabled: number;
}

export const DEPOSIT_STATUSES = ['pending', 'awaiting_payment', 'paid', 'failed', 'cancelled', 'expired'] as const;
export const WITHDRAWAL_STATUSES = ['requested', 'submitted', 'paid', 'failed', 'cancelled'] as const;
export const REVERSAL_KINDS = ['chargeback', 'provider_refund'] as const;
const OPEN_DEPOSIT = ['pending', 'awaiting_payment'];
const OPEN_WITHDRAWAL = ['requested', 'submitted'];

export interface DatabaseMetricsOptions {
  /** The API's authenticator pool. */
  pool: Pick<Pool, 'query'>;
  logger: Logger;
  /** Seconds between ledger checks; 0 = never. */
  ledgerCheckIntervalSeconds: number;
  /** Minimum gap between cheap reads, ms (default 1000). */
  minIntervalMs?: number;
}

export function ledgerCheckIntervalFrom(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.METRICS_LEDGER_CHECK_INTERVAL_SECONDS;
  if (raw === undefined || raw === '') return 300;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`METRICS_LEDGER_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "${raw}".`);
  return value;
}

export function registerDatabaseMetrics(metrics: Metrics, options: DatabaseMetricsOptions): void {
  const registers = [metrics.registry];
  const minInterval = options.minIntervalMs ?? 1000;
  const log = options.logger.child({ component: 'metrics' });
  let snapshot: Snapshot | undefined;
  let checks: LedgerChecks | undefined;
  let up = 0;
  let readAt = 0;
  let checkedAt = 0;
  let checkSeconds = 0;
  let inFlight: Promise<void> | undefined;

  async function read(): Promise<void> {
    const wantChecks = options.ledgerCheckIntervalSeconds > 0 && Date.now() - checkedAt >= options.ledgerCheckIntervalSeconds * 1000;
    const started = performance.now();
    try {
      const { rows } = await options.pool.query<{ s: Snapshot & Partial<LedgerChecks> }>({
        name: 'metrics-snapshot',
        text: 'select app_private.metrics_snapshot($1) as s',
        values: [wantChecks],
      });
      snapshot = rows[0].s;
      if (wantChecks) {
        checks = rows[0].s as LedgerChecks;
        checkedAt = Date.now();
        checkSeconds = (performance.now() - started) / 1000;
      }
      up = 1;
    } catch (error) {
      up = 0;
      log.warn({ err: { message: (error as Error).message } }, 'metrics snapshot failed');
    }
    readAt = Date.now();
  }

  /** One read shared by every gauge of a scrape (and by concurrent scrapes). */
  function refresh(): Promise<void> {
    if (inFlight) return inFlight;
    if (Date.now() - readAt < minInterval) return Promise.resolve();
    inFlight = read().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>) => void) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        await refresh();
        this.reset();
        fill(this);
      },
    });

  gauge('pgwallet_metrics_snapshot_up', '1 if the last read of app_private.metrics_snapshot succeeded.', [], (g) => g.set(up));

  // The job queue.
  const perTask = (field: keyof JobRow) => (g: Gauge<'task'>) => {
    for (const row of snapshot?.jobs ?? []) g.set({ task: row.task }, Number(row[field]));
  };
  gauge('pgwallet_job_queue_ready', 'Jobs waiting to run now (run_at reached, not locked, attempts left), by task.', ['task'], perTask('ready'));
  gauge('pgwallet_job_queue_scheduled', 'Jobs due later (retries with backoff, scheduled jobs), by task.', ['task'], perTask('scheduled'));
  gauge('pgwallet_job_queue_running', 'Jobs locked by a worker, by task.', ['task'], perTask('running'));
  gauge('pgwallet_job_oldest_ready_age_seconds', 'How long the oldest ready job has waited, by task (0 when none waits).', ['task'], perTask('oldest_ready_seconds'));
  gauge('pgwallet_dead_letter_jobs', 'Jobs out of attempts (dead letters, audit.dead_jobs), by task.', ['task'], perTask('dead'));

  // Worker liveness (sql/worker/heartbeats.sql).
  const fromSnapshot = (field: 'workers_alive' | 'jobs_locked_by_dead_workers' | 'worker_lock_recoveries') => (g: Gauge<never>) => {
    if (snapshot && snapshot[field] !== undefined) g.set(Number(snapshot[field]));
  };
  gauge('pgwallet_workers_alive', 'graphile-worker pools whose heartbeat is under 30 s old (app_private.worker_heartbeats).', [], fromSnapshot('workers_alive'));
  gauge('pgwallet_jobs_locked_by_dead_workers', 'Jobs still locked by a worker silent for over 2 minutes: the automatic release is not running. Must be 0.', [], fromSnapshot('jobs_locked_by_dead_workers'));
  gauge('pgwallet_worker_lock_recoveries', 'Times the locks of a dead worker were released (app_private.worker_lock_recoveries); a rise means workers are being killed.', [], fromSnapshot('worker_lock_recoveries'));

  // Deposits and withdrawals.
  const byStatus = (statuses: readonly string[], open: string[], openRows: () => OpenRow[] | undefined, all: () => Record<string, number> | undefined) =>
    (g: Gauge<'status'>) => {
      const openCounts = new Map((openRows() ?? []).map((r) => [r.status, Number(r.count)]));
      const totals = all();
      for (const status of statuses) {
        // Open statuses are exact on every scrape; final ones come from the last ledger check.
        if (open.includes(status)) g.set({ status }, openCounts.get(status) ?? 0);
        else if (totals) g.set({ status }, Number(totals[status] ?? 0));
      }
    };
  gauge('pgwallet_deposits', 'Deposits by status (open statuses on every scrape, final ones as of the last ledger check).', ['status'],
    byStatus(DEPOSIT_STATUSES, OPEN_DEPOSIT, () => snapshot?.deposits_open, () => checks?.deposits_by_status));
  gauge('pgwallet_withdrawals', 'Withdrawals by status (open statuses on every scrape, final ones as of the last ledger check).', ['status'],
    byStatus(WITHDRAWAL_STATUSES, OPEN_WITHDRAWAL, () => snapshot?.withdrawals_open, () => checks?.withdrawals_by_status));
  const oldest = (open: string[], rows: () => OpenRow[] | undefined) => (g: Gauge<'status'>) => {
    const found = new Map((rows() ?? []).map((r) => [r.status, Number(r.oldest_seconds)]));
    for (const status of open) g.set({ status }, found.get(status) ?? 0);
  };
  gauge('pgwallet_deposit_oldest_open_age_seconds', 'Age of the oldest deposit not final, by status (0 when none).', ['status'], oldest(OPEN_DEPOSIT, () => snapshot?.deposits_open));
  gauge('pgwallet_withdrawal_oldest_open_age_seconds', 'Age of the oldest withdrawal not final, by status (0 when none).', ['status'], oldest(OPEN_WITHDRAWAL, () => snapshot?.withdrawals_open));
  gauge('pgwallet_payments_needing_attention', 'Deposits and withdrawals flagged for a person (audit.payments_needing_attention), as of the last ledger check.', ['kind'], (g) => {
    if (!checks) return;
    g.set({ kind: 'deposit' }, Number(checks.deposits_needing_attention));
    g.set({ kind: 'withdrawal' }, Number(checks.withdrawals_needing_attention));
  });
  gauge('pgwallet_reconciliation_discrepancies_open', 'Differences between Revio and the ledger not yet resolved (audit.revio_discrepancies).', [], (g) => {
    if (snapshot) g.set(Number(snapshot.discrepancies_open));
  });

  gauge('pgwallet_reversals_unreviewed', 'Chargebacks and refunds Revio made after a credit that no admin has reviewed yet (audit.reversals); the wallet\'s withdrawals wait.', ['kind'], (g) => {
    if (!snapshot) return;
    for (const kind of REVERSAL_KINDS) g.set({ kind }, Number(snapshot.reversals_unreviewed?.[kind] ?? 0));
  });
  gauge('pgwallet_chargeback_receivable', 'Minor units users owe because a chargeback exceeded their wallet (the chargeback_receivable accounts), by currency.', ['currency'], (g) => {
    for (const [currency, owed] of Object.entries(snapshot?.chargeback_receivable ?? {})) g.set({ currency }, Number(owed));
  });

  // Ledger invariants: each must read 0.
  const invariant = (name: string, help: string, field: keyof LedgerChecks) =>
    gauge(name, `${help} Must be 0. NaN until the first ledger check (or with the checks off).`, [], (g) => {
      g.set(checks ? Number(checks[field]) : Number.NaN);
    });
  invariant('pgwallet_ledger_trial_balance_nonzero_currencies', 'Currencies whose accounts do not sum to zero (audit.trial_balance).', 'trial_balance_nonzero_currencies');
  invariant('pgwallet_ledger_unbalanced_entries', 'Journal entries that do not sum to zero or have fewer than two postings (audit.unbalanced_entries).', 'unbalanced_entries');
  invariant('pgwallet_ledger_balance_drift_rows', 'Accounts whose stored balance, holds or version disagree with their postings (audit.balance_drift).', 'balance_drift_rows');
  invariant('pgwallet_ledger_guards_disabled', 'Ledger guard triggers that are disabled (audit.ledger_guards).', 'ledger_guards_disabled');
  gauge('pgwallet_ledger_guards_enabled', 'Ledger guard triggers that fire (audit.ledger_guards); must not drop.', [], (g) => {
    if (checks) g.set(Number(checks.ledger_guards_enabled));
  });
  gauge('pgwallet_ledger_check_timestamp_seconds', 'Unix time of the last successful ledger check (0 before the first).', [], (g) => g.set(checkedAt / 1000));
  gauge('pgwallet_ledger_check_duration_seconds', 'How long the last ledger check took.', [], (g) => g.set(checkSeconds));
}

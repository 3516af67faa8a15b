// Every task the worker runs, and the schedule of the periodic ones. Add new
// tasks here (one file each under tasks/).
import { parseCronItems, type ParsedCronItem, type TaskList } from 'graphile-worker';
import type { BankAccountKey } from '../../payments/bank-crypto.ts';
import type { PaymentSettings } from '../../payments/config.ts';
import type { RevioClient } from '../../revio/index.ts';
import { ledgerExpireHolds } from './ledger-expire-holds.ts';
import { ledgerPurgeIdempotency } from './ledger-purge-idempotency.ts';
import { revioCreatePayout } from './revio-create-payout.ts';
import { revioCreatePurchase } from './revio-create-purchase.ts';
import { revioReconcileDaily, revioReconcilePending } from './revio-reconcile.ts';
import { workerReleaseStaleLocks } from './worker-release-stale-locks.ts';

/** What the Revio tasks need; without it they are not registered and their jobs wait. */
export interface RevioTaskDeps {
  client: RevioClient;
  payments: PaymentSettings;
  bankAccountKey?: BankAccountKey;
}

export interface TaskSettings {
  idempotencyRetentionDays: number;
  /** WORKER_STALE_AFTER_SECONDS (src/worker/heartbeat.ts). */
  staleAfterSeconds?: number;
  revio?: RevioTaskDeps;
}

export function makeTaskList(settings: TaskSettings): TaskList {
  const tasks: TaskList = {
    ledger_expire_holds: ledgerExpireHolds,
    ledger_purge_idempotency: ledgerPurgeIdempotency(settings.idempotencyRetentionDays),
    worker_release_stale_locks: workerReleaseStaleLocks(settings.staleAfterSeconds ?? 30),
  };
  const revio = settings.revio;
  if (revio) {
    tasks['revio.create_purchase'] = revioCreatePurchase(revio.client, revio.payments);
    tasks['revio.create_payout'] = revioCreatePayout(revio.client, revio.bankAccountKey, revio.payments);
    tasks['revio.reconcile_pending'] = revioReconcilePending(revio.client, revio.payments);
    tasks['revio.reconcile_daily'] = revioReconcileDaily(revio.client, revio.payments);
  }
  return tasks;
}

/**
 * backfillPeriod 0: after downtime, run once at the next tick rather than once
 * per missed tick (every task catches up on everything in one run anyway).
 */
export function makeCronItems(options: { revio?: boolean } = {}): ParsedCronItem[] {
  return parseCronItems([
    { task: 'ledger_expire_holds', match: '* * * * *', identifier: 'ledger_expire_holds', options: { backfillPeriod: 0, maxAttempts: 3 } },
    { task: 'worker_release_stale_locks', match: '* * * * *', identifier: 'worker_release_stale_locks', options: { backfillPeriod: 0, maxAttempts: 1 } },
    { task: 'ledger_purge_idempotency', match: '17 * * * *', identifier: 'ledger_purge_idempotency', options: { backfillPeriod: 0, maxAttempts: 3 } },
    ...(options.revio
      ? [
          { task: 'revio.reconcile_pending', match: '*/5 * * * *', identifier: 'revio.reconcile_pending', options: { backfillPeriod: 0, maxAttempts: 3 } },
          { task: 'revio.reconcile_daily', match: '30 3 * * *', identifier: 'revio.reconcile_daily', options: { backfillPeriod: 0, maxAttempts: 5 } },
        ]
      : []),
  ]);
}

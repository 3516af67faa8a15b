// Every task the worker runs, and the schedule of the periodic ones. Add new
// tasks here (one file each under tasks/).
import { parseCronItems, type ParsedCronItem, type TaskList } from 'graphile-worker';
import { commerceExpireReservations } from '../../commerce/tasks.ts';
import { emailSettingsFrom, type EmailSettings } from '../../email/config.ts';
import { transportFor, type EmailTransport } from '../../email/transport.ts';
import type { BankAccountKey } from '../../payments/bank-crypto.ts';
import type { PaymentSettings } from '../../payments/config.ts';
import type { RevioClient } from '../../revio/index.ts';
import { VOTING_CRON_ITEMS, votingCloseEvents, votingSnapshotLeaderboards } from '../../voting/tasks.ts';
import { ledgerExpireHolds } from './ledger-expire-holds.ts';
import { ledgerPurgeIdempotency } from './ledger-purge-idempotency.ts';
import { paymentsReleaseCleared } from './payments-release-cleared.ts';
import { revioCancelPurchase } from './revio-cancel-purchase.ts';
import { revioCreatePayout } from './revio-create-payout.ts';
import { revioCreatePurchase } from './revio-create-purchase.ts';
import { revioPurgeDeliveries } from './revio-purge-deliveries.ts';
import { revioReconcileDaily, revioReconcilePending } from './revio-reconcile.ts';
import { revioRefundPurchase } from './revio-refund-purchase.ts';
import { sendEmail } from './send-email.ts';
import { workerReleaseStaleLocks } from './worker-release-stale-locks.ts';
/** What the Revio tasks need; without it they are not registered and their jobs wait. */
export interface RevioTaskDeps {
  client: RevioClient;
  payments: PaymentSettings;
  bankAccountKey?: BankAccountKey;
}

export interface TaskSettings {
  idempotencyRetentionDays: number;
  /** Stored Revio deliveries: signed ones kept this many days, bad signatures badDeliveryRetentionDays. */
  deliveryRetentionDays: number;
  badDeliveryRetentionDays: number;
  /** WORKER_STALE_AFTER_SECONDS (src/worker/heartbeat.ts). */
  staleAfterSeconds?: number;
  revio?: RevioTaskDeps;
  /** Account emails (default: EMAIL_TRANSPORT / SMTP_URL / APP_URL from the environment). */
  email?: { settings: EmailSettings; transport?: EmailTransport };
}

export function makeTaskList(settings: TaskSettings): TaskList {
  const tasks: TaskList = {
    ledger_expire_holds: ledgerExpireHolds,
    ledger_purge_idempotency: ledgerPurgeIdempotency(settings.idempotencyRetentionDays),
    voting_close_events: votingCloseEvents,
    voting_snapshot_leaderboards: votingSnapshotLeaderboards,
    // Database only (no Revio call), so it runs whether or not Revio is configured.
    'revio.purge_deliveries': revioPurgeDeliveries(settings.deliveryRetentionDays, settings.badDeliveryRetentionDays),
    commerce_expire_reservations: commerceExpireReservations,
    'payments.release_cleared': paymentsReleaseCleared,
    worker_release_stale_locks: workerReleaseStaleLocks(settings.staleAfterSeconds ?? 30),
  };
  const emailSettings = settings.email?.settings ?? emailSettingsFrom();
  tasks.send_email = sendEmail(settings.email?.transport ?? transportFor(emailSettings), emailSettings);
  const revio = settings.revio;
  if (revio) {
    tasks['revio.create_purchase'] = revioCreatePurchase(revio.client, revio.payments);
    tasks['revio.create_payout'] = revioCreatePayout(revio.client, revio.bankAccountKey, revio.payments);
    tasks['revio.refund_purchase'] = revioRefundPurchase(revio.client, revio.payments);
    tasks['revio.cancel_purchase'] = revioCancelPurchase(revio.client, revio.payments);
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
    ...VOTING_CRON_ITEMS,
    { task: 'revio.purge_deliveries', match: '43 4 * * *', identifier: 'revio.purge_deliveries', options: { backfillPeriod: 0, maxAttempts: 3 } },
    { task: 'commerce_expire_reservations', match: '* * * * *', identifier: 'commerce_expire_reservations', options: { backfillPeriod: 0, maxAttempts: 3 } },
    ...(options.revio
      ? [
          // Deposits (and so clearing holds) exist only with Revio; each also has its own job at clears_at.
          { task: 'payments.release_cleared', match: '* * * * *', identifier: 'payments.release_cleared', options: { backfillPeriod: 0, maxAttempts: 3 } },
          { task: 'revio.reconcile_pending', match: '*/5 * * * *', identifier: 'revio.reconcile_pending', options: { backfillPeriod: 0, maxAttempts: 3 } },
          { task: 'revio.reconcile_daily', match: '30 3 * * *', identifier: 'revio.reconcile_daily', options: { backfillPeriod: 0, maxAttempts: 5 } },
        ]
      : []),
  ]);
}

// Every task the worker runs, and the schedule of the periodic ones. Add new
// tasks here (one file each under tasks/).
import { parseCronItems, type ParsedCronItem, type TaskList } from 'graphile-worker';
import { ledgerExpireHolds } from './ledger-expire-holds.ts';
import { ledgerPurgeIdempotency } from './ledger-purge-idempotency.ts';

export interface TaskSettings {
  idempotencyRetentionDays: number;
}

export function makeTaskList(settings: TaskSettings): TaskList {
  return {
    ledger_expire_holds: ledgerExpireHolds,
    ledger_purge_idempotency: ledgerPurgeIdempotency(settings.idempotencyRetentionDays),
  };
}

/**
 * backfillPeriod 0: after downtime, run once at the next tick rather than once
 * per missed tick (both tasks catch up on everything in one run anyway).
 */
export function makeCronItems(): ParsedCronItem[] {
  return parseCronItems([
    { task: 'ledger_expire_holds', match: '* * * * *', identifier: 'ledger_expire_holds', options: { backfillPeriod: 0, maxAttempts: 3 } },
    { task: 'ledger_purge_idempotency', match: '17 * * * *', identifier: 'ledger_purge_idempotency', options: { backfillPeriod: 0, maxAttempts: 3 } },
  ]);
}

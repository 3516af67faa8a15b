// Cron task: closes holds left open past their expiry, so that the money they
// reserved becomes available again. ledger.expire_holds works in batches (each
// call is its own transaction, so no lock is held for long) and locks
// accounts in the same order as every other ledger writer.
import type { Task } from 'graphile-worker';

export const EXPIRE_HOLDS_BATCH = 1000;

export const ledgerExpireHolds: Task = async (_payload, helpers) => {
  let total = 0;
  for (;;) {
    const { rows } = await helpers.query<{ expired: number }>('select ledger.expire_holds($1) as expired', [EXPIRE_HOLDS_BATCH]);
    total += rows[0].expired;
    if (rows[0].expired < EXPIRE_HOLDS_BATCH) break;
  }
  if (total > 0) helpers.logger.info(`expired ${total} hold(s)`);
};

// Cron task (every minute): expires reservations nobody confirmed in time,
// giving back their stock and releasing their ledger holds. Small batches,
// each its own transaction (one call), so an expiry never holds many product
// rows and wallets locked at once; rows a confirmation is holding are skipped
// by commerce.expire_reservations (SKIP LOCKED) and decided by it.
import type { Task } from 'graphile-worker';

export const EXPIRE_RESERVATIONS_BATCH = 50;

/** SQLSTATEs meaning the commerce migration is not applied yet (schema or function missing). */
const NOT_MIGRATED = new Set(['3F000', '42883']);

export const commerceExpireReservations: Task = async (_payload, helpers) => {
  let total = 0;
  for (;;) {
    let rows: { expired: number }[];
    try {
      ({ rows } = await helpers.query<{ expired: number }>('select commerce.expire_reservations($1) as expired', [EXPIRE_RESERVATIONS_BATCH]));
    } catch (error) {
      // A worker deployed ahead of its migration has nothing to expire yet;
      // failing (and retrying) every minute would only fill the dead letters.
      if (NOT_MIGRATED.has((error as { code?: string }).code ?? '')) {
        helpers.logger.warn('commerce schema not migrated yet; nothing to expire');
        return;
      }
      throw error;
    }
    total += rows[0].expired;
    if (rows[0].expired < EXPIRE_RESERVATIONS_BATCH) break;
  }
  if (total > 0) helpers.logger.info(`expired ${total} reservation(s)`);
};

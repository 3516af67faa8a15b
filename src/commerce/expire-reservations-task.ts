// Cron task (every minute): expires reservations nobody confirmed in time,
// giving back their stock and releasing their ledger holds. Small batches,
// each its own transaction (one call), so an expiry never holds many product
// rows and wallets locked at once; rows a confirmation is holding are skipped
// by commerce.expire_reservations (SKIP LOCKED) and decided by it.
import type { Task } from 'graphile-worker';

export const EXPIRE_RESERVATIONS_BATCH = 50;

export const commerceExpireReservations: Task = async (_payload, helpers) => {
  let total = 0;
  for (;;) {
    const { rows } = await helpers.query<{ expired: number }>('select commerce.expire_reservations($1) as expired', [EXPIRE_RESERVATIONS_BATCH]);
    total += rows[0].expired;
    if (rows[0].expired < EXPIRE_RESERVATIONS_BATCH) break;
  }
  if (total > 0) helpers.logger.info(`expired ${total} reservation(s)`);
};

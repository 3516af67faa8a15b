// Daily (cron, 04:43): deletes stored Revio deliveries past their retention —
// REVIO_DELIVERY_RETENTION_DAYS (default 90) for signed ones,
// REVIO_BAD_DELIVERY_RETENTION_DAYS (default 7) for bad signatures — so the
// webhook route cannot fill the disk over time (issue 9 §3). In batches; the
// ledger, the payment rows and the event deduplication keys stay.
import type { Task } from 'graphile-worker';

const BATCH = 10_000;

export function revioPurgeDeliveries(goodDays: number, badDays: number): Task {
  return async (_payload, helpers) => {
    let total = 0;
    for (;;) {
      const { rows } = await helpers.query<{ purged: string }>('select app_private.purge_revio_deliveries($1, $2, $3) as purged', [goodDays, badDays, BATCH]);
      const purged = Number(rows[0].purged);
      total += purged;
      if (purged < BATCH) break;
    }
    if (total > 0) helpers.logger.info(`purged ${total} stored Revio deliveries past retention`);
  };
}

// Cron task: deletes idempotency records older than the retention window
// (IDEMPOTENCY_RETENTION_DAYS, default 7). A request repeated after that runs
// again, so the window must outlast any client's retries.
import type { Task } from 'graphile-worker';

export function ledgerPurgeIdempotency(retentionDays: number): Task {
  return async (_payload, helpers) => {
    const { rows } = await helpers.query<{ purged: string }>(
      'select app_private.purge_idempotency_records(make_interval(days => $1)) as purged',
      [retentionDays],
    );
    if (rows[0].purged !== '0') helpers.logger.info(`purged ${rows[0].purged} idempotency record(s) older than ${retentionDays} days`);
  };
}

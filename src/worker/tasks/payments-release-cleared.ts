// payments.release_cleared: releases the clearing holds of deposits whose
// clears_at has come (sql/payments/clearing.sql). Queued for each credited
// deposit at its clears_at, and run every minute by cron to catch up after
// downtime; releasing twice is harmless.
import type { Task } from 'graphile-worker';

export const paymentsReleaseCleared: Task = async (payload, helpers) => {
  const depositId = (payload as { deposit_id?: string } | null)?.deposit_id ?? null;
  const { rows } = await helpers.query<{ released: number }>('select app_private.release_cleared_deposits($1::uuid) as released', [depositId]);
  if (rows[0].released > 0) helpers.logger.info(`released the clearing hold of ${rows[0].released} deposit(s)`);
};

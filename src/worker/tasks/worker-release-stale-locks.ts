// Cron task (every minute): frees the job locks of workers whose heartbeat
// stopped (src/worker/heartbeat.ts does the same every 15 s in each worker;
// this is the schedule an operator sees in the job metrics).
import type { Task } from 'graphile-worker';

export const workerReleaseStaleLocks = (staleAfterSeconds: number): Task => async (_payload, helpers) => {
  const { rows } = await helpers.query<{ freed: number }>('select app_private.release_stale_worker_locks(make_interval(secs => $1)) as freed', [staleAfterSeconds]);
  if (Number(rows[0].freed) > 0) helpers.logger.warn(`released ${rows[0].freed} job(s) locked by dead workers`);
};

// Worker liveness (issue 14, sql/worker/heartbeats.sql). graphile-worker 0.18
// locks a job with its pool id and only frees locks after 4 hours, so a worker
// killed mid-job (kill -9, OOM, lost host) used to leave its deposits and
// withdrawals waiting that long. Each pool this process runs records itself
// every `everyMs`; every `releaseEveryMs` this process also frees the locks of
// pools silent for `staleAfterSeconds` (any live worker does it, so one dead
// worker is recovered by the others, or by itself once restarted).
import { hostname } from 'node:os';
import type { Pool } from 'pg';
import type { Logger } from 'pino';

export interface HeartbeatSettings {
  everyMs: number;
  releaseEveryMs: number;
  staleAfterSeconds: number;
}

/** WORKER_STALE_AFTER_SECONDS (default 30, at least 10): heartbeats every third of it, releases every half. */
export function heartbeatSettingsFrom(env: NodeJS.ProcessEnv = process.env): HeartbeatSettings {
  const raw = env.WORKER_STALE_AFTER_SECONDS;
  const stale = raw === undefined || raw === '' ? 30 : Number(raw);
  if (!Number.isInteger(stale) || stale < 10) throw new Error(`WORKER_STALE_AFTER_SECONDS must be an integer of at least 10, got "${raw}".`);
  return { everyMs: Math.floor((stale * 1000) / 6), releaseEveryMs: Math.floor((stale * 1000) / 2), staleAfterSeconds: stale };
}

export interface Heartbeat {
  /** A graphile-worker pool started (its id is what jobs.locked_by holds). */
  add(workerId: string): void;
  /** A pool stopped cleanly: its row goes. */
  remove(workerId: string): void;
  /** The jobs running in this process (listed in every heartbeat: a lock on any other is orphaned). */
  readonly running: Set<string>;
  /** One release pass now; resolves to the jobs freed. */
  releaseStale(): Promise<number>;
  stop(): Promise<void>;
}

export function startHeartbeat(pool: Pick<Pool, 'query'>, logger: Logger, settings: HeartbeatSettings): Heartbeat {
  const ids = new Set<string>();
  const running = new Set<string>();
  const log = logger.child({ component: 'heartbeat' });
  const host = hostname();
  let failing = false;

  const beat = async (id: string) => {
    await pool.query('select app_private.worker_heartbeat($1, $2, $3, $4::bigint[])', [id, host, process.pid, [...running]]);
  };
  const beatAll = async () => {
    try {
      for (const id of ids) await beat(id);
      if (failing) log.info('worker heartbeat recovered');
      failing = false;
    } catch (error) {
      // PostgreSQL restarting: the next tick tries again; log once per outage.
      if (!failing) log.warn({ err: { message: (error as Error).message } }, 'worker heartbeat failed');
      failing = true;
    }
  };
  const releaseStale = async (): Promise<number> => {
    const { rows } = await pool.query<{ freed: number }>('select app_private.release_stale_worker_locks(make_interval(secs => $1)) as freed', [settings.staleAfterSeconds]);
    const freed = Number(rows[0].freed);
    if (freed > 0) log.warn({ jobs: freed }, 'released the job locks of a worker whose heartbeat stopped');
    return freed;
  };

  const beatTimer = setInterval(() => void beatAll(), settings.everyMs);
  const releaseTimer = setInterval(() => void releaseStale().catch(() => undefined), settings.releaseEveryMs);
  beatTimer.unref();
  releaseTimer.unref();

  return {
    add(id) {
      ids.add(id);
      void beat(id).catch(() => undefined);
    },
    remove(id) {
      ids.delete(id);
      void pool.query('select app_private.worker_signoff($1)', [id]).catch(() => undefined);
    },
    releaseStale,
    running,
    async stop() {
      clearInterval(beatTimer);
      clearInterval(releaseTimer);
      await Promise.all([...ids].map((id) => pool.query('select app_private.worker_signoff($1)', [id]).catch(() => undefined)));
      ids.clear();
    },
  };
}

// WEB_CONCURRENCY > 1: several API processes on one port (node:cluster). Node
// runs JavaScript on one core per process; the primary only supervises, and
// the workers share the listening socket (the primary hands out connections
// round-robin). Worker 0 is the process `npm start` would otherwise be (it
// runs the in-process job worker, if any, and registers the Revio webhook);
// the others serve the API only. A worker that dies is started again.
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { ConfigError } from '../config.ts';

/** WEB_CONCURRENCY: how many API processes (1: no cluster). */
export function webConcurrencyFrom(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.WEB_CONCURRENCY?.trim();
  if (!raw) return 1;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1 || value > 64) throw new ConfigError(`WEB_CONCURRENCY must be a whole number from 1 to 64, got "${raw}".`);
  return value;
}

/** This process's place in the cluster: 0 when not clustered. */
export function clusterIndex(env: NodeJS.ProcessEnv = process.env): number {
  return cluster.isWorker ? Number(env.PGWALLET_CLUSTER_INDEX ?? 0) : 0;
}

/** Forks `count` copies of this script and keeps them running until SIGTERM/SIGINT, which it passes on. */
export async function superviseCluster(count: number, logger: Logger): Promise<void> {
  let stopping = false;
  const fork = (index: number) => {
    const worker = cluster.fork({
      PGWALLET_CLUSTER_INDEX: String(index),
      // Only worker 0 runs jobs in process; the others serve the API.
      IN_PROCESS_WORKER: index === 0 ? (process.env.IN_PROCESS_WORKER ?? 'true') : 'false',
    });
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ index, code, signal }, 'API process exited; starting it again in 1 s');
      setTimeout(() => fork(index), 1000).unref();
    });
  };
  for (let index = 0; index < count; index++) fork(index);
  logger.info({ processes: count }, 'API cluster started');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.once(signal, () => {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let left = workers.length;
      if (left === 0) process.exit(0);
      for (const worker of workers) {
        worker.once('exit', () => {
          left -= 1;
          if (left === 0) process.exit(0);
        });
        worker.process.kill(signal);
      }
    });
  }
}

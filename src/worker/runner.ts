// The graphile-worker runner: jobs queued in the database (cron included) run
// here, in the same process as the API (src/main.ts) or on their own.
//
// The worker connects as its own role, app_worker (WORKER_DATABASE_URL), never
// as the owner: it may EXECUTE exactly the functions its tasks call and use
// graphile-worker's schema (sql/worker/grants.sql). startWorker refuses an
// owner or superuser connection. It gets its own pool (never the API's).
//
// Schema: graphile-worker installs and upgrades its own `graphile_worker`
// schema through its migrations (`runMigrations`). That needs the owner, so it
// happens at migration time (`npm run migrate`, `npm start`'s local database:
// installWorkerSchema), which then grants the schema to app_worker. It is not
// part of our graphile-migrate history: that schema is versioned by
// graphile-worker, and copying its SQL into our migrations would fight its own
// migration table.
import { EventEmitter } from 'node:events';
import { Logger as WorkerLogger, run, runMigrations, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { makePool } from '../db/pools.ts';
import { paymentPgSettings } from '../payments/config.ts';
import { runWithLogContext } from '../log-context.ts';
import type { Metrics } from '../metrics/registry.ts';
import { heartbeatSettingsFrom, startHeartbeat, type Heartbeat } from './heartbeat.ts';
import { makeCronItems, makeTaskList, type RevioTaskDeps, type TaskSettings } from './tasks/index.ts';

export interface WorkerSettings {
  concurrency: number;
  idempotencyRetentionDays: number;
  deliveryRetentionDays: number;
  badDeliveryRetentionDays: number;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}".`);
  return value;
}

/** WORKER_CONCURRENCY (2), IDEMPOTENCY_RETENTION_DAYS (7), REVIO_DELIVERY_RETENTION_DAYS (90), REVIO_BAD_DELIVERY_RETENTION_DAYS (7). */
export function workerSettingsFrom(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  return {
    concurrency: positiveInt(env, 'WORKER_CONCURRENCY', 2),
    idempotencyRetentionDays: positiveInt(env, 'IDEMPOTENCY_RETENTION_DAYS', 7),
    deliveryRetentionDays: positiveInt(env, 'REVIO_DELIVERY_RETENTION_DAYS', 90),
    badDeliveryRetentionDays: positiveInt(env, 'REVIO_BAD_DELIVERY_RETENTION_DAYS', 7),
  };
}

/** graphile-worker's log lines, through our pino logger. */
function workerLogger(logger: Logger): WorkerLogger {
  const log = logger.child({ component: 'worker' });
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...(meta ?? {}) };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else if (level === 'info') log.info(fields, message);
    else log.debug(fields, message);
  });
}

export interface StartWorkerOptions extends Partial<WorkerSettings> {
  /** app_worker connection string (never the owner's: refused). */
  connectionString: string;
  logger: Logger;
  /** Run the periodic tasks (default true). */
  cron?: boolean;
  /** Registers the Revio tasks (deposits, withdrawals, reconciliation). */
  revio?: RevioTaskDeps;
  /** Account email delivery (default: from the environment, src/email/config.ts). */
  email?: TaskSettings['email'];
  /** How often to look for jobs whose run_at has come (retries); default 2000 ms. New jobs arrive by LISTEN at once. */
  pollInterval?: number;
  /** Counts and times jobs (pgwallet_jobs_total, pgwallet_job_duration_seconds) and exports the worker pool's usage. */
  metrics?: Metrics;
}

/** Every line a task logs (its own, the Revio client's, SQL errors) carries the job id and task. */
function withJobLogContext(tasks: TaskList): TaskList {
  const wrapped: TaskList = {};
  for (const [name, task] of Object.entries(tasks)) {
    if (!task) continue;
    wrapped[name] = (payload, helpers) => runWithLogContext({ jobId: String(helpers.job.id), task: name }, () => task(payload, helpers));
  }
  return wrapped;
}

/** job:success → success; job:error with attempts left → retry; job:failed (out of attempts) → failed. */
export function instrumentRunner(runner: Runner, metrics: Metrics): void {
  const started = new Map<string, number>();
  const finish = (job: { id: string; task_identifier: string }, outcome: string) => {
    const at = started.get(job.id);
    started.delete(job.id);
    if (at !== undefined) metrics.jobDuration.observe({ task: job.task_identifier }, (performance.now() - at) / 1000);
    metrics.jobs.inc({ task: job.task_identifier, outcome });
  };
  runner.events.on('job:start', ({ job }) => void started.set(job.id, performance.now()));
  runner.events.on('job:success', ({ job }) => finish(job, 'success'));
  runner.events.on('job:error', ({ job }) => {
    if (job.attempts < job.max_attempts) finish(job, 'retry');
  });
  runner.events.on('job:failed', ({ job }) => finish(job, 'failed'));
}

export interface Worker {
  /** The current runner (a new one after a restart). */
  readonly runner: Runner;
  /** Records this worker's pools and frees the locks of dead workers. */
  readonly heartbeat: Heartbeat;
  /** Waits for running jobs to finish, then closes the pool. */
  stop(): Promise<void>;
}

export async function startWorker(options: StartWorkerOptions): Promise<Worker> {
  const settings = { ...workerSettingsFrom(), ...definedOnly(options) };
  // Twice the concurrency: a Revio job holds one connection for its advisory
  // lock (tasks/revio-job.ts, exclusively) while its queries use another.
  // The payment settings SQL reads (clearing, fees) also apply to what jobs credit.
  const pool = makePool(options.connectionString, 'worker', options.logger, settings.concurrency * 2 + 2,
    options.revio ? paymentPgSettings(options.revio.payments) : undefined);
  const heartbeatSettings = heartbeatSettingsFrom();
  const heartbeat = startHeartbeat(pool, options.logger, heartbeatSettings);
  // Each runner (a new one after a restart) gets a new pool id: heartbeat it
  // from the moment it exists, sign it off when it stops cleanly.
  const events = new EventEmitter() as WorkerEvents;
  events.on('pool:create', ({ workerPool }) => heartbeat.add(workerPool.id));
  events.on('pool:release', ({ workerPool }) => heartbeat.remove(workerPool.id));
  events.on('job:start', ({ job }) => void heartbeat.running.add(String(job.id)));
  events.on('job:complete', ({ job }) => void heartbeat.running.delete(String(job.id)));
  const launch = () =>
    run({
      pgPool: pool,
      events,
      taskList: withJobLogContext(makeTaskList({ ...settings, staleAfterSeconds: heartbeatSettings.staleAfterSeconds, revio: options.revio, email: options.email })),
      parsedCronItems: options.cron === false ? [] : makeCronItems({ revio: Boolean(options.revio) }),
      concurrency: settings.concurrency,
      ...(options.pollInterval ? { pollInterval: options.pollInterval } : {}),
      noHandleSignals: true,
      logger: workerLogger(options.logger),
    });
  let runner: Runner;
  try {
    await refuseOwner(pool);
    runner = await launch();
  } catch (error) {
    await heartbeat.stop();
    await pool.end();
    throw error;
  }
  if (options.metrics) options.metrics.addPool('worker', pool);

  let stopping = false;
  // graphile-worker shuts its runner down when it cannot record a job's outcome
  // (PostgreSQL restarting, say) and rejects runner.promise. Unwatched, that
  // rejection ended the process; instead start a new runner after a pause, so
  // one database restart does not end job processing.
  const supervise = (current: Runner) => {
    if (options.metrics) instrumentRunner(current, options.metrics);
    current.promise.catch(async (error: unknown) => {
      if (stopping) return;
      options.logger.error({ err: { message: String((error as Error)?.message ?? error) } }, 'worker runner failed; restarting it');
      for (let delayMs = 1000; !stopping; delayMs = Math.min(delayMs * 2, 30_000)) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        if (stopping) return;
        try {
          runner = await launch();
          supervise(runner);
          options.logger.info('worker runner restarted');
          return;
        } catch (restartError) {
          options.logger.warn({ err: { message: String((restartError as Error)?.message ?? restartError) }, retryInMs: delayMs }, 'worker runner could not restart yet');
        }
      }
    });
  };
  supervise(runner);

  return {
    get runner() {
      return runner;
    },
    heartbeat,
    async stop() {
      stopping = true;
      await runner.stop().catch(() => undefined); // already stopped if it had failed
      await heartbeat.stop();
      await pool.end();
    },
  };
}

/** The worker must not hold the owner's (or a superuser's) power: a bug or a hostile payload in a task could then rewrite anything. */
async function refuseOwner(pool: Pool): Promise<void> {
  const { rows } = await pool.query<{ owner: boolean; superuser: boolean; role: string }>(
    `select current_user as role,
            pg_has_role(current_user, (select datdba from pg_database where datname = current_database()), 'USAGE') as owner,
            (select rolsuper from pg_roles where rolname = current_user) as superuser`,
  );
  if (rows[0].owner || rows[0].superuser) {
    throw new Error(`The worker connects as ${rows[0].role}, which owns the database (or is a superuser); connect as app_worker (WORKER_DATABASE_URL).`);
  }
}

/** Installs or upgrades the graphile_worker schema without running any job, as the owner, and grants it to app_worker. */
export async function installWorkerSchema(connectionString: string, logger: Logger): Promise<void> {
  await runMigrations({ connectionString, logger: workerLogger(logger) });
  const pool = makePool(connectionString, 'worker-schema', logger, 1);
  try {
    // Absent only on a database older than sql/worker/grants.sql.
    await pool.query(`do $$ begin
      if to_regprocedure('app_private.grant_worker_queue()') is not null then perform app_private.grant_worker_queue(); end if;
    end $$`);
  } finally {
    await pool.end();
  }
}

function definedOnly(options: StartWorkerOptions): Partial<WorkerSettings> {
  const out: Partial<WorkerSettings> = {};
  if (options.concurrency !== undefined) out.concurrency = options.concurrency;
  if (options.idempotencyRetentionDays !== undefined) out.idempotencyRetentionDays = options.idempotencyRetentionDays;
  if (options.deliveryRetentionDays !== undefined) out.deliveryRetentionDays = options.deliveryRetentionDays;
  if (options.badDeliveryRetentionDays !== undefined) out.badDeliveryRetentionDays = options.badDeliveryRetentionDays;
  return out;
}

// What the Revio tasks share: how a call to Revio is retried and how a job
// that cannot succeed ends.
//
// Two layers of retry. Inside one job attempt a retryable failure (network,
// timeout, 429, 5xx) is tried again a few times with a short exponential
// backoff (REVIO_QUICK_RETRIES, REVIO_RETRY_BASE_MS), which rides out blips;
// then the job fails and graphile-worker retries it with its own
// exponential backoff (e^attempt seconds: 2.7 s, 7.4 s, 20 s … about 9 hours
// over REVIO_JOB_MAX_ATTEMPTS = 10). On the last attempt the deposit or
// withdrawal is flagged needs_attention with the error before the job dies,
// and the dead job stays visible in audit.dead_jobs: nothing is silently
// stuck. A final refusal (4xx) ends the job at once through `onRefused`.
import type { JobHelpers } from 'graphile-worker';
import { RevioError } from '../../revio/index.ts';

export interface RevioJobSettings {
  quickRetries: number;
  retryBaseMs: number;
  inFlightGraceMs: number;
}

/** A failure that no retry can fix and that needs a person: flag, do not retry. */
export class NeedsAttention extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Longest Retry-After we wait for inside an attempt; longer ones go to the job's backoff. */
const MAX_INLINE_WAIT_MS = 5_000;

/** SQLSTATE PAYMENT_CLOSED: the deposit, withdrawal or refund was cancelled or settled meanwhile. */
const PAYMENT_CLOSED = 'PW325';
const isClosed = (error: unknown) => (error as { code?: unknown } | null)?.code === PAYMENT_CLOSED;

export interface RevioJobHandlers {
  kind: 'deposit' | 'withdrawal' | 'refund';
  id: string;
  /** Revio refused for good (a 4xx): close the deposit or withdrawal with a reason. */
  onRefused(error: RevioError): Promise<void>;
}

export async function runRevioJob(
  helpers: JobHelpers,
  settings: RevioJobSettings,
  handlers: RevioJobHandlers,
  step: () => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (error instanceof RevioError && !error.retryable) {
        helpers.logger.warn(`Revio refused ${handlers.kind} ${handlers.id}: ${error.message}`);
        return handlers.onRefused(error);
      }
      if (isClosed(error)) {
        // Cancelled before anything was sent to Revio: nothing left to do.
        helpers.logger.info(`${handlers.kind} ${handlers.id}: ${(error as Error).message}`);
        return;
      }
      if (error instanceof NeedsAttention) {
        helpers.logger.error(`${handlers.kind} ${handlers.id} needs attention: ${error.message}`);
        await flag(helpers, handlers, error.message);
        return;
      }
      const wait = error instanceof RevioError
        ? Math.max(error.retryAfterMs ?? 0, settings.retryBaseMs * 2 ** (attempt - 1))
        : Number.POSITIVE_INFINITY;
      if (attempt < settings.quickRetries && wait <= MAX_INLINE_WAIT_MS) {
        helpers.logger.info(`${handlers.kind} ${handlers.id}: ${(error as Error).message} (try ${attempt}); again in ${wait} ms`);
        await sleep(wait);
        continue;
      }
      if (helpers.job.attempts >= helpers.job.max_attempts) {
        await flag(helpers, handlers, `${helpers.job.task_identifier} gave up after ${helpers.job.attempts} attempts: ${(error as Error).message}`);
      }
      throw error;
    }
  }
}

async function flag(helpers: JobHelpers, handlers: RevioJobHandlers, reason: string): Promise<void> {
  await helpers.query('select app_private.flag_payment($1, $2, $3)', [handlers.kind, handlers.id, reason]);
}

/**
 * Refuses to decide, yet, that a non-idempotent call made at `calledAt` never
 * reached Revio. A call that got no answer (a timeout, a broken connection)
 * may still be queued or running there, and a read made meanwhile — even one
 * sent later — can be answered before it lands: the fault suite saw a refund
 * read back unchanged 2 s after its timed-out call, refunded again, and Revio
 * then held two refunds (docs/faults.md, finding 17). So a lookup that finds
 * nothing counts only once REVIO_INFLIGHT_GRACE_MS have passed since the
 * call; before that the attempt fails and the job looks again after its
 * backoff. Within an attempt, `calledAt` is the last call that got no answer
 * (an answered 5xx is over at Revio); across attempts, the first call's mark
 * in the database, the conservative choice.
 */
export function assertNoCallInFlight(settings: RevioJobSettings, what: string, calledAt: Date | null): void {
  if (!calledAt) return;
  const waited = Date.now() - calledAt.getTime();
  if (waited < settings.inFlightGraceMs) {
    throw new Error(`the ${what} call made ${waited} ms ago may still land at Revio; looking again after ${settings.inFlightGraceMs} ms`);
  }
}

/** A failure with no answer from Revio: the request may still land there later. */
export function mayLandLater(error: unknown): boolean {
  return error instanceof RevioError && (error.kind === 'timeout' || error.kind === 'network');
}

/** Applies an object Revio returned, as a webhook would be applied. */
export async function applyRevioObject(helpers: Pick<JobHelpers, 'query'>, body: string, source: 'worker' | 'reconciliation' = 'worker'): Promise<string> {
  const { rows } = await helpers.query<{ outcome: string }>(
    "select app_private.receive_revio_event($1, true, now(), '{}', $2) as outcome",
    [body, source],
  );
  return rows[0].outcome;
}

/** Revio's own words for a refusal, for the person whose money it is. */
export function refusalReason(error: RevioError, what: string): string {
  return `Revio refused the ${what}${error.revioMessage ? `: ${error.revioMessage}` : error.code ? ` (${error.code})` : '.'}`;
}

/**
 * Runs one attempt of a payment's job with no other attempt for the same
 * payment running anywhere. A worker paused longer than
 * WORKER_STALE_AFTER_SECONDS has its job freed and re-run by another worker
 * while it may still be mid-call to Revio; two attempts then both found no
 * payout by reference and both created and executed one (the fault suite saw a
 * withdrawal paid out twice; docs/faults.md, finding 10). A session advisory
 * lock on the attempt's own connection serializes them: it is freed when the
 * attempt ends, or when its process or connection dies. An attempt that finds
 * it taken fails and retries with the job's backoff.
 */
export async function exclusively(helpers: JobHelpers, key: string, attempt: () => Promise<void>): Promise<void> {
  await helpers.withPgClient(async (client) => {
    const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [key]);
    if (!rows[0].ok) throw new Error(`another attempt at ${key} is still running (a paused worker?); trying again later`);
    try {
      await attempt();
    } finally {
      await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
    }
  });
}

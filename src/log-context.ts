// What every log line should say about where it comes from: the request id and
// the signed-in user (API), or the job id and task (worker). Kept in an
// AsyncLocalStorage so lines written deep inside PostGraphile's error masking,
// the Revio client or a task carry it without passing a logger around; the
// pino mixin in logger.ts adds it to each line.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface LogContext {
  requestId?: string;
  userId?: string;
  jobId?: string;
  task?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with `context` as the log context of everything it starts. */
export function runWithLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** Adds fields (e.g. the user id once the token is verified) to the current context. */
export function addToLogContext(fields: LogContext): void {
  const store = storage.getStore();
  if (store) Object.assign(store, fields);
}

export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}

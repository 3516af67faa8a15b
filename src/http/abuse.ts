// Abuse limits in front of GraphQL (and every other route): CORS allow-list,
// body limits, per-IP and per-user rate limits with every sign-in and money
// field of the operation counted in a stricter bucket and capped per request
// (operation-limits.ts); hits are counted in the process and added to
// PostgreSQL in batches (RateCounter, sql/abuse/rate_limit.sql), and the
// page-size cap for first/last given as variables (literals are checked by
// GraphQL validation, graphql/limits-plugin.ts).
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { Kind, parse, visit } from 'postgraphile/graphql';
import type { ApiLimits, RateLimits } from './limits-config.ts';
import { capViolation, clientKey, makeRequestClassifier, type OperationCounts } from './operation-limits.ts';

function jsonError(res: Response, status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  res.status(status).json({ errors: [{ message, extensions: { code, ...extra } }] });
}

/** Access-Control-* headers for allowed origins only; preflights are answered here. */
export function cors(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    const ok = typeof origin === 'string' && allowed.has(origin);
    if (ok) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After, X-Request-Id');
    }
    res.vary('Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      if (!ok) return void res.status(403).end();
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Request-Id');
      res.setHeader('Access-Control-Max-Age', '600');
      return void res.status(204).end();
    }
    next();
  };
}

/** Routes with their own body handling are exempt; everything else gets a small limit. */
export function limitOtherBodies(limit: number, exemptPrefixes: string[]): RequestHandler {
  return (req, res, next) => {
    if (exemptPrefixes.some((prefix) => req.path === prefix || req.path.startsWith(`${prefix}/`))) return next();
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      res.set('connection', 'close');
      return jsonError(res, 413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`);
    }
    if (declared === 0 && !req.headers['transfer-encoding']) return next();
    // Undeclared (chunked) or small bodies: count what arrives.
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit && !res.headersSent) {
        res.set('connection', 'close');
        jsonError(res, 413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`);
        req.destroy();
      }
    });
    next();
  };
}

/**
 * Reads the GraphQL body (JSON, application/graphql or form data) before
 * grafserv does, so the rate limiter can see the operation; grafserv uses req.body.
 */
export function graphqlBodyParsers(limitBytes: number): RequestHandler[] {
  return [
    express.json({ limit: limitBytes }),
    express.text({ limit: limitBytes, type: 'application/graphql' }),
    express.urlencoded({ limit: limitBytes, extended: false }),
  ];
}

/** body-parser failures as coded JSON errors instead of a masked 500. */
export function bodyParserErrors(error: Error & { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) {
  if (error.type === 'entity.too.large' || error.status === 413) {
    res.set('connection', 'close');
    return jsonError(res, 413, 'PAYLOAD_TOO_LARGE', 'The request body is larger than the limit.');
  }
  if (typeof error.type === 'string' && error.status && error.status >= 400 && error.status < 500) {
    return jsonError(res, 400, 'BAD_REQUEST', 'The request body could not be parsed.');
  }
  next(error);
}

function queryOf(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object' && typeof (body as { query?: unknown }).query === 'string') return (body as { query: string }).query;
  return '';
}

function variablesOf(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object') return {};
  let variables = (body as { variables?: unknown }).variables;
  if (typeof variables === 'string') {
    try {
      variables = JSON.parse(variables);
    } catch {
      return {};
    }
  }
  return variables && typeof variables === 'object' ? (variables as Record<string, unknown>) : {};
}

function operationNameOf(body: unknown): string | undefined {
  const name = body && typeof body === 'object' ? (body as { operationName?: unknown }).operationName : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** The sign-in and money fields a request was counted for; the execute middleware checks them (graphql/limits-plugin.ts). */
export const CHARGED = Symbol('pgwallet.chargedFields');
type Charged = Request & { [CHARGED]?: OperationCounts };

export function chargedFields(req: unknown): OperationCounts | undefined {
  return (req as Charged | undefined)?.[CHARGED];
}

/** Every request counts once per address and per user; every sign-in and money field once in its bucket. */
export function rateLimitBuckets(rate: RateLimits, ip: string, userId: string | undefined, counts: OperationCounts): [string, number, number][] {
  const client = clientKey(ip);
  const buckets: [string, number, number][] = [[`ip:${client}`, rate.perIp, 1]];
  if (userId) buckets.push([`user:${userId}`, rate.perUser, 1]);
  if (counts.signIn > 0) buckets.push([`auth:${client}`, rate.authPerIp, counts.signIn]);
  if (counts.money > 0 && userId) buckets.push([`money:${userId}`, rate.moneyPerUser, counts.money]);
  return buckets.filter(([, limit]) => limit > 0);
}

interface BucketCount {
  /** Start of the counting window (ms since the epoch). */
  window: number;
  /** Hits counted here and not yet added to PostgreSQL. */
  pending: number;
  /** The bucket's total in PostgreSQL (every process's hits) at the last flush. */
  shared: number;
}

/**
 * Counts hits in this process and adds them to the shared counters in
 * PostgreSQL (app_private.rate_limit_add) in one statement per flush, at most
 * every `flushMs`, instead of one SQL call per request: the limiter then
 * costs no round trip and no row lock on the request path. One process sees
 * its own hits at once and the other processes' within one flush interval, so
 * with N API processes a client can overshoot a limit by what it sends in
 * `flushMs` to the N - 1 others; the windows stay those of PostgreSQL's table.
 */
export class RateCounter {
  private readonly counts = new Map<string, BucketCount>();
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  private readonly pool: Pick<Pool, 'query'>;
  private readonly windowSeconds: number;
  private readonly logger: Logger;
  private readonly flushMs: number;

  constructor(pool: Pick<Pool, 'query'>, windowSeconds: number, logger: Logger, flushMs = 100) {
    this.pool = pool;
    this.windowSeconds = windowSeconds;
    this.logger = logger;
    this.flushMs = flushMs;
  }

  /** Counts the hits (one unless a bucket says more) against each bucket; returns 0, or the seconds until the window ends when any is over its limit. */
  hit(buckets: [string, number, number?][], now = Date.now()): number {
    const windowMs = this.windowSeconds * 1000;
    const window = Math.floor(now / windowMs) * windowMs;
    let over = false;
    for (const [name, limit, hits = 1] of buckets) {
      let count = this.counts.get(name);
      if (!count || count.window !== window) {
        count = { window, pending: 0, shared: 0 };
        this.counts.set(name, count);
      }
      count.pending += hits; // every sign-in or money field counts; hits over the limit still count, as in PostgreSQL
      if (count.shared + count.pending > limit) over = true;
    }
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
    return over ? Math.max(1, Math.ceil((window + windowMs - now) / 1000)) : 0;
  }

  /** Adds the pending hits to PostgreSQL and learns every bucket's shared total. */
  async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs).unref();
      return;
    }
    const current = Math.floor(Date.now() / (this.windowSeconds * 1000)) * this.windowSeconds * 1000;
    const batch: [string, BucketCount, number][] = [];
    for (const [name, count] of this.counts) {
      if (count.window < current && count.pending === 0) this.counts.delete(name); // an ended window
      else if (count.pending > 0) batch.push([name, count, count.pending]);
    }
    if (batch.length === 0) return;
    this.flushing = true;
    try {
      const { rows } = await this.pool.query<{ bucket: string; window_ms: string; hits: number }>({
        name: 'pgwallet_rate_limit_add',
        text: 'select bucket, window_ms, hits from app_private.rate_limit_add($1::text[], $2::bigint[], $3::int[], $4::int)',
        values: [batch.map(([name]) => name), batch.map(([, c]) => c.window), batch.map(([, , n]) => n), this.windowSeconds],
      });
      const totals = new Map(rows.map((r) => [`${r.bucket}@${r.window_ms}`, r.hits]));
      for (const [name, count, sent] of batch) {
        count.pending -= sent;
        count.shared = totals.get(`${name}@${count.window}`) ?? count.shared + sent;
      }
    } catch (error) {
      // Fail open: keep the hits pending for the next flush; this process still counts its own.
      this.logger.warn({ err: { message: (error as Error).message } }, 'rate limit flush failed; counting locally');
    } finally {
      this.flushing = false;
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Classifies the request on its parsed document, refuses one over the
 * per-operation caps (400, nothing run), then counts it against its rate
 * limits without a SQL call on the request path (RateCounter); 429 with
 * Retry-After when any bucket is over.
 */
export function rateLimit(pool: Pick<Pool, 'query'>, limits: Pick<ApiLimits, 'rate' | 'maxMoneyFields'>, logger: Logger): RequestHandler {
  const classify = makeRequestClassifier();
  const rate = limits.rate;
  const counter = new RateCounter(pool, rate.windowSeconds, logger);
  return (req, res, next) => {
    if (Array.isArray(req.body)) {
      return jsonError(res, 400, 'BATCH_NOT_SUPPORTED', 'Batched operations are not supported; send one operation per request.');
    }
    const counts = classify(queryOf(req.body), operationNameOf(req.body));
    const violation = capViolation(counts, limits.maxMoneyFields);
    if (violation) return jsonError(res, 400, violation.code, violation.message);
    (req as Charged)[CHARGED] = counts;
    const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const buckets = rateLimitBuckets(rate, ip, req.auth?.sub, counts);
    if (buckets.length === 0) return next();
    const retryAfter = counter.hit(buckets);
    if (retryAfter > 0) {
      res.setHeader('Retry-After', String(retryAfter));
      return jsonError(res, 429, 'RATE_LIMITED', `Too many requests; try again in ${retryAfter} s.`, { retryAfterSeconds: retryAfter });
    }
    next();
  };
}

/** first/last given as variables: validation cannot see their values, so they are checked here. */
export function pageSizeGuard(maxPageSize: number): RequestHandler {
  return (req, res, next) => {
    if (maxPageSize <= 0) return next();
    const query = queryOf(req.body);
    const variables = variablesOf(req.body);
    if (!query || Object.keys(variables).length === 0 || !/\b(?:first|last)\b/.test(query)) return next();
    let tooLarge: number | undefined;
    try {
      visit(parse(query), {
        Argument(node) {
          if ((node.name.value === 'first' || node.name.value === 'last') && node.value.kind === Kind.VARIABLE) {
            const value = Number(variables[node.value.name.value]);
            if (Number.isFinite(value) && value > maxPageSize) tooLarge = value;
          }
        },
      });
    } catch {
      return next(); // a syntax error: grafserv reports it
    }
    if (tooLarge !== undefined) {
      return jsonError(res, 400, 'PAGE_SIZE_TOO_LARGE', `first/last may be at most ${maxPageSize} (got ${tooLarge}).`);
    }
    next();
  };
}

export function graphqlGuards(pool: Pick<Pool, 'query'>, limits: ApiLimits, logger: Logger): RequestHandler[] {
  return [rateLimit(pool, limits, logger), pageSizeGuard(limits.maxPageSize)];
}

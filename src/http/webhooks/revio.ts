// POST /webhooks/revio: Revio's signed events. The raw body is kept and its
// X-Signature (RSA-SHA256 over the exact bytes) is checked before anything
// reads it; then one SQL call, app_private.receive_revio_event, records the
// delivery and applies it. Anything recorded gets a 2xx so Revio stops
// retrying (duplicates, unknown objects and refused credits included); a bad
// signature is recorded and answered 401, with nothing applied. Only a
// failure to record (database down) or to get Revio's key is a 5xx, so Revio
// tries again later.
//
// Disk (issue 9 §3): a bad-signature delivery keeps its headers, the body's
// SHA-256 and size and at most its first 1 kB (SQL cuts it). Bad signatures
// are also rate limited per client address (REVIO_WEBHOOK_BAD_SIGNATURES_PER_IP
// per RATE_LIMIT_WINDOW_SECONDS); over the limit the delivery is answered 429
// and not recorded at all. The count is taken only after the signature has
// failed, so a good delivery is never refused for rate, whoever else is noisy.
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Pool } from 'pg';
import type { Metrics } from '../../metrics/registry.ts';
import { verifyRevioSignature, type PublicKeySource } from '../../revio/index.ts';
import { WEBHOOK_EVENTS } from '../../revio/types.ts';

export interface RevioWebhookOptions {
  /** The API's authenticator pool: it may execute receive_revio_event and nothing else here. */
  pool: Pick<Pool, 'query'>;
  publicKey: PublicKeySource;
  bodyLimitBytes: number;
  /** Counts deliveries as pgwallet_webhook_deliveries_total{event_type, outcome}. */
  metrics?: Metrics;
  /** Bad-signature deliveries allowed per client address per window (default: from the environment). */
  badSignatureLimit?: BadSignatureLimit;
}

export interface BadSignatureLimit {
  perIp: number;
  windowSeconds: number;
}

/** REVIO_WEBHOOK_BAD_SIGNATURES_PER_IP (default 20; 0 turns the limit off) per RATE_LIMIT_WINDOW_SECONDS (default 60). */
export function badSignatureLimitFromEnv(env: NodeJS.ProcessEnv = process.env): BadSignatureLimit {
  const read = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative whole number, got "${raw}".`);
    return value;
  };
  return { perIp: read('REVIO_WEBHOOK_BAD_SIGNATURES_PER_IP', 20), windowSeconds: Math.max(1, read('RATE_LIMIT_WINDOW_SECONDS', 60)) };
}

const KNOWN_EVENTS = new Set<string>(WEBHOOK_EVENTS);

/** The event type label: Revio's known types only (bounded); anything else is `other`. */
function eventTypeLabel(raw: Buffer): string {
  try {
    const type = (JSON.parse(raw.toString('utf8')) as { event_type?: unknown }).event_type;
    return typeof type === 'string' && KNOWN_EVENTS.has(type) ? type : 'other';
  } catch {
    return 'other';
  }
}

export const REVIO_WEBHOOK_PATH = '/webhooks/revio';

/** The headers worth keeping with a delivery (never cookies or authorization). */
const KEPT_HEADERS = ['content-type', 'content-length', 'user-agent', 'x-signature', 'x-request-id', 'x-forwarded-for'];

function keptHeaders(req: Request): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = req.headers[name];
    if (value !== undefined) kept[name] = (Array.isArray(value) ? value.join(', ') : value).slice(0, 4096);
  }
  if (req.socket.remoteAddress) kept['remote-address'] = req.socket.remoteAddress;
  return kept;
}

function error(res: Response, status: number, code: string, message: string) {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

export function revioWebhookRoutes(options: RevioWebhookOptions): Router {
  const router = Router();
  const limit = options.bodyLimitBytes;
  const count = (event_type: string, outcome: string) => options.metrics?.webhookDeliveries.inc({ event_type, outcome });
  const badLimit = options.badSignatureLimit ?? badSignatureLimitFromEnv();
  /** 0, or the seconds until this address may send another bad signature. */
  const badSignatureRetry = async (ip: string) => {
    if (badLimit.perIp <= 0) return 0;
    const { rows } = await options.pool.query<{ retry: number }>({
      name: 'pgwallet_webhook_bad_signature_hit',
      text: 'select app_private.rate_limit_hit($1::text[], $2::int[], $3::int) as retry',
      values: [[`webhook_bad_signature:${ip}`], [badLimit.perIp], badLimit.windowSeconds],
    });
    return rows[0].retry;
  };

  router.post(
    REVIO_WEBHOOK_PATH,
    (req: Request, res: Response, next: NextFunction) => {
      if (Number(req.headers['content-length'] ?? 0) <= limit) return next();
      count('unknown', 'too_large');
      res.set('connection', 'close');
      error(res, 413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`);
    },
    // Every content type as raw bytes: the signature covers the bytes, not a parse of them.
    express.raw({ type: () => true, limit }),
    async (req: Request, res: Response, next: NextFunction) => {
      const receivedAt = new Date();
      try {
        const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        let key;
        try {
          key = await options.publicKey.get();
        } catch (keyError) {
          req.log.error({ err: { message: (keyError as Error).message } }, 'Revio public key unavailable; webhook not recorded');
          count('unknown', 'error');
          res.set('retry-after', '60');
          return error(res, 503, 'WEBHOOK_KEY_UNAVAILABLE', 'The key that verifies Revio signatures is not available yet; try again later.');
        }
        const signatureOk = verifyRevioSignature(raw, req.headers['x-signature'], key);
        if (!signatureOk) {
          const retry = await badSignatureRetry(req.ip ?? req.socket.remoteAddress ?? 'unknown');
          if (retry > 0) {
            count('unverified', 'rate_limited');
            res.set('retry-after', String(retry));
            return error(res, 429, 'RATE_LIMITED', 'Too many deliveries with a bad signature from this address; nothing was recorded.');
          }
        }
        // PostgreSQL text cannot hold NUL; such a body is stored without them.
        const body = raw.toString('utf8').replaceAll('\u0000', '');
        // Named: each connection parses and plans it once.
        const { rows } = await options.pool.query<{ outcome: string }>({
          name: 'receive-revio-event',
          text: 'select app_private.receive_revio_event($1, $2, $3, $4) as outcome',
          values: [body, signatureOk, receivedAt, keptHeaders(req)],
        });
        const outcome = rows[0].outcome;
        // Only a verified body names its event type (an unsigned one is anyone's choice).
        count(signatureOk ? eventTypeLabel(raw) : 'unverified', outcome);
        if (!signatureOk) {
          req.log.warn({ outcome }, 'Revio webhook with a bad or missing signature recorded; nothing applied');
          return error(res, 401, 'WEBHOOK_SIGNATURE_INVALID', 'X-Signature is missing or does not verify with Revio\'s key.');
        }
        res.status(200).json({ received: true, outcome });
      } catch (failure) {
        count('unknown', 'error');
        next(failure);
      }
    },
  );

  // An undeclared (chunked) body over the limit, stopped by the raw parser.
  router.use(REVIO_WEBHOOK_PATH, (failure: Error & { type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (failure.type !== 'entity.too.large') return next(failure);
    count('unknown', 'too_large');
    res.set('connection', 'close');
    error(res, 413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`);
  });
  return router;
}

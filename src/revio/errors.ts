// Every failed Revio call becomes a RevioError that says whether trying again
// can help (`retryable`) and whether Revio may have acted on the request anyway
// (`outcomeUnknown`: look the object up by reference before creating it again).
// Messages carry the operation, HTTP status and Revio's own code/message; never
// the API key, a signature, or a request body.

export type RevioErrorKind =
  /** Could not reach Revio, or the connection broke. Retryable. */
  | 'network'
  /** No answer within the call's timeout (or a 408). Retryable, outcome unknown. */
  | 'timeout'
  /** 429; `retryAfterMs` says when to come back. Retryable, not applied. */
  | 'rate_limited'
  /** 5xx. Retryable, outcome unknown. */
  | 'server'
  /** Any other 4xx: the request itself is wrong (or the object does not allow it). Final. */
  | 'client'
  /** A 2xx whose body is not the JSON we expect. Retryable, outcome unknown. */
  | 'invalid_response'
  /** The call was refused before sending (bad input, or a URL outside Revio's origin). Final. */
  | 'refused';

export interface RevioErrorDetails {
  kind: RevioErrorKind;
  operation: string;
  method: string;
  /** Path relative to the API base (no host, no query secrets: we never put secrets in URLs). */
  path: string;
  status?: number;
  /** Revio's error code, e.g. `invalid_request`, `purchase_refund_error`. */
  code?: string;
  /** Revio's own message, kept verbatim. */
  revioMessage?: string;
  /** For field validation errors: the field path Revio named (e.g. `purchase.products`). */
  field?: string;
  /** For 429 (and 503 with Retry-After): milliseconds to wait. */
  retryAfterMs?: number;
  cause?: unknown;
}

const RETRYABLE: Record<RevioErrorKind, boolean> = {
  network: true,
  timeout: true,
  rate_limited: true,
  server: true,
  client: false,
  invalid_response: true,
  refused: false,
};

export class RevioError extends Error {
  override readonly name = 'RevioError';
  readonly kind: RevioErrorKind;
  readonly retryable: boolean;
  /**
   * True when Revio may have received and applied the request although we saw
   * a failure (timeout, 5xx, a connection broken after sending). Before
   * repeating a create, look the object up by our reference.
   */
  readonly outcomeUnknown: boolean;
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly revioMessage: string | undefined;
  readonly field: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(details: RevioErrorDetails, outcomeUnknown: boolean) {
    super(describe(details), details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = details.kind;
    this.retryable = RETRYABLE[details.kind];
    this.outcomeUnknown = outcomeUnknown;
    this.operation = details.operation;
    this.method = details.method;
    this.path = details.path;
    this.status = details.status;
    this.code = details.code;
    this.revioMessage = details.revioMessage;
    this.field = details.field;
    this.retryAfterMs = details.retryAfterMs;
  }

  /** What a log line or a job's last_error may safely carry. */
  toJSON() {
    return {
      name: this.name,
      message: this.message,
      kind: this.kind,
      retryable: this.retryable,
      outcomeUnknown: this.outcomeUnknown,
      operation: this.operation,
      status: this.status,
      code: this.code,
      revioMessage: this.revioMessage,
      field: this.field,
      retryAfterMs: this.retryAfterMs,
    };
  }
}

function describe(d: RevioErrorDetails): string {
  const text = sentence(d);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function sentence(d: RevioErrorDetails): string {
  const where = `Revio ${d.operation} (${d.method} ${d.path})`;
  const revio = [d.code, d.field ? `field ${d.field}` : undefined, d.revioMessage].filter(Boolean).join(': ');
  switch (d.kind) {
    case 'network':
      return `${where} could not reach Revio: ${causeText(d.cause)}`;
    case 'timeout':
      return d.status ? `${where} timed out: HTTP ${d.status}${revio ? ` ${revio}` : ''}` : `${where} got no answer in time`;
    case 'rate_limited':
      return `${where} was rate limited (HTTP 429${d.retryAfterMs === undefined ? '' : `, retry after ${d.retryAfterMs} ms`})${revio ? `: ${revio}` : ''}`;
    case 'invalid_response':
      return `${where} answered HTTP ${d.status} with a body that is not the expected JSON`;
    case 'refused':
      return `${where} was not sent: ${d.revioMessage ?? 'refused'}`;
    default:
      return `${where} failed with HTTP ${d.status}${revio ? `: ${revio}` : ''}`;
  }
}

/** A network cause's code and message; these never contain our headers. */
function causeText(cause: unknown): string {
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause;
  if (inner instanceof Error) {
    const code = (inner as NodeJS.ErrnoException).code;
    return code ? `${code} ${inner.message}` : inner.message;
  }
  return String(inner);
}

/** True for a RevioError worth retrying (network, timeout, 429, 5xx). */
export function isRetryable(error: unknown): boolean {
  return error instanceof RevioError && error.retryable;
}

/** Network errors where the request surely never reached Revio. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

export function networkErrorWasNotSent(cause: unknown): boolean {
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause;
  const code = (inner as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && NOT_SENT_CODES.has(code);
}

/**
 * Revio's error bodies come in three layouts; this finds code/message in any:
 * `{"__all__": {"message", "code"}}` (spec), `{"code", "message"}` (newer
 * platform docs), and field errors such as `{"brand_id": [{"message", "code"}]}`
 * or `{"purchase": {"products": ["msg"]}}` (layout undocumented, [A]).
 */
export function parseErrorBody(body: unknown): { code?: string; message?: string; field?: string } {
  if (body === null || typeof body !== 'object') {
    return typeof body === 'string' && body.trim() ? { message: body.trim().slice(0, 500) } : {};
  }
  const record = body as Record<string, unknown>;
  if (typeof record.code === 'string' || typeof record.message === 'string') {
    return { code: str(record.code), message: str(record.message) };
  }
  if (typeof record.detail === 'string') return { message: record.detail };
  if ('__all__' in record) {
    const inner = parseErrorBody(Array.isArray(record.__all__) ? record.__all__[0] : record.__all__);
    return { code: inner.code, message: inner.message };
  }
  return firstFieldError(record, []) ?? {};
}

function firstFieldError(value: unknown, path: string[]): { code?: string; message?: string; field?: string } | undefined {
  if (typeof value === 'string') return { message: value, field: path.join('.') || undefined };
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = firstFieldError(item, path);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.message === 'string') {
      return { code: str(record.code), message: record.message, field: path.join('.') || undefined };
    }
    for (const [key, inner] of Object.entries(record)) {
      const found = firstFieldError(inner, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 500) : undefined;
}

/** Retry-After as delta-seconds or an HTTP date → milliseconds (never negative). */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

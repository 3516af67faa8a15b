// One HTTP exchange with Revio: Bearer auth, JSON in and out, a timeout per
// call, and every failure turned into a classified RevioError. The API key is
// only ever sent to the configured origin (absolute URLs from Revio such as
// `execution_url` and list `next` links are checked first) and never appears in
// a message or log line.
import { RevioError, networkErrorWasNotSent, parseErrorBody, parseRetryAfter, type RevioErrorKind } from './errors.ts';
import type { CallOptions } from './types.ts';

export interface RevioLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RevioHttpOptions {
  /** e.g. https://gate.reviopay.com/api/v1/ (a trailing slash is added if missing). */
  baseUrl: string;
  apiKey: string;
  /** Default per-call timeout. */
  timeoutMs: number;
  logger?: RevioLogger;
  /** Sent as User-Agent. */
  userAgent?: string;
}

export interface RevioRequest {
  operation: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Relative to the base URL ("purchases/<id>/"), or an absolute URL on the same origin. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** False when a 2xx may come without a JSON body (e.g. DELETE → 204). */
  expectBody?: boolean;
}

export class RevioHttp {
  readonly baseUrl: URL;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #logger: RevioLogger | undefined;
  readonly #userAgent: string;

  constructor(options: RevioHttpOptions) {
    if (!options.apiKey) throw new TypeError('Revio API key is empty.');
    const base = new URL(options.baseUrl);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    if (base.username || base.password) throw new TypeError('Revio base URL must not carry credentials.');
    this.baseUrl = base;
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
    this.#userAgent = options.userAgent ?? 'pgwallet-revio-client/1';
  }

  /** Resolves a relative path (every Revio path ends with "/") or checks an absolute URL's origin. */
  resolve(operation: string, method: string, path: string): URL {
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(path);
    if (!absolute && !path.endsWith('/')) throw new TypeError(`Revio paths end with "/": ${path}`);
    const url = new URL(absolute ? path : path.replace(/^\/+/, ''), this.baseUrl);
    if (url.origin !== this.baseUrl.origin) {
      throw new RevioError(
        { kind: 'refused', operation, method, path: url.origin, revioMessage: `URL is outside the configured Revio origin ${this.baseUrl.origin}` },
        false,
      );
    }
    return url;
  }

  async request<T>(request: RevioRequest, options: CallOptions = {}): Promise<T> {
    const url = this.resolve(request.operation, request.method, request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const shownPath = url.pathname.startsWith(this.baseUrl.pathname) ? url.pathname.slice(this.baseUrl.pathname.length - 1) : url.pathname;
    const base = { operation: request.operation, method: request.method, path: shownPath };
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: 'application/json',
      'user-agent': this.#userAgent,
    };
    let payload: string | undefined;
    if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(request.body);
    }

    const started = performance.now();
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method: request.method, headers, body: payload, signal, redirect: 'manual' });
      // The timeout covers reading the body too (a server can hang mid-body).
      text = await response.text();
    } catch (error) {
      const ms = Math.round(performance.now() - started);
      if (timeout.aborted) {
        this.#logger?.warn({ ...base, ms, timeoutMs }, 'Revio call timed out');
        throw new RevioError({ ...base, kind: 'timeout', cause: error }, true);
      }
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      this.#logger?.warn({ ...base, ms, err: { message: (error as Error).message } }, 'Revio call failed on the network');
      throw new RevioError({ ...base, kind: 'network', cause: error }, !networkErrorWasNotSent(error));
    }
    const ms = Math.round(performance.now() - started);
    this.#logger?.debug({ ...base, status: response.status, ms }, 'Revio call');

    if (response.status >= 200 && response.status < 300) {
      if (request.expectBody === false || (response.status === 204 && text === '')) return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new RevioError({ ...base, kind: 'invalid_response', status: response.status }, true);
      }
    }

    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // HTML error pages from proxies: keep a short text excerpt only when it is not markup.
      parsed = /^\s*</.test(text) ? undefined : text;
    }
    const { code, message, field } = parseErrorBody(parsed);
    const status = response.status;
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const kind: RevioErrorKind =
      status === 429 ? 'rate_limited' : status === 408 ? 'timeout' : status >= 500 ? 'server' : 'client';
    // A 429 was refused before processing; a 5xx or 408 may or may not have been
    // applied. Any other status (4xx, or a 3xx, which Revio's API never sends) is final.
    const outcomeUnknown = kind === 'server' || kind === 'timeout';
    this.#logger?.warn({ ...base, status, code, ms }, 'Revio call refused');
    throw new RevioError({ ...base, kind, status, code, revioMessage: message, field, retryAfterMs }, outcomeUnknown);
  }
}

// Failure knobs, settable at start (options.faults) and at runtime (PUT/PATCH
// /_sandbox/faults). Per API operation: latency, errors (random rate or the
// next N), hangs/timeouts (random rate or the next N), optionally *after* the
// operation took effect (a lost response: the ambiguous failure). For webhook
// delivery: duplicates, out-of-order windows and an outage window.

export const OPERATIONS = [
  'createPurchase', 'listPurchases', 'getPurchase', 'cancelPurchase', 'refundPurchase',
  'createPayout', 'listPayouts', 'getPayout', 'executePayout',
  'getPublicKey', 'createWebhook', 'listWebhooks', 'getWebhook', 'updateWebhook', 'deleteWebhook',
] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface EndpointFaults {
  /** Milliseconds added before the request is handled. */
  latencyMs?: number;
  /** Probability (0..1) that the request fails with `errorStatus`. */
  errorRate?: number;
  /** The next N requests fail with `errorStatus` (deterministic; counts down). */
  failNext?: number;
  /** Status of injected errors; default 500. 429 adds Retry-After. */
  errorStatus?: number;
  /** Retry-After seconds sent with an injected 429 or 503; default 1. */
  retryAfterSeconds?: number;
  /** Probability (0..1) that the request hangs (no answer: the client times out). */
  timeoutRate?: number;
  /** The next N requests hang (deterministic; counts down). */
  hangNext?: number;
  /** How long a hang lasts before the connection is dropped; default: until the client gives up. */
  hangMs?: number;
  /** Apply the operation first, then fail or hang (the caller cannot tell it happened). */
  afterEffect?: boolean;
}

export interface OutageWindow {
  /** Epoch ms; default now. */
  startsAt: number;
  /** Epoch ms; null = until cleared. */
  endsAt: number | null;
  /** delay: deliveries wait and resume after the window; drop: events raised inside the window are never delivered. */
  mode: 'delay' | 'drop';
}

export interface WebhookFaults {
  /** Probability (0..1) that a delivery answered 2xx is sent once more (a lost acknowledgement). */
  duplicateRate?: number;
  /**
   * When > 0, the events of one object raised within this many ms are held
   * and then delivered newest first (per-object ordering is broken on purpose).
   */
  outOfOrderWindowMs?: number;
  outage?: OutageWindow | null;
}

export interface SandboxFaults {
  /** Keyed by operation name, or "*" for every API operation. Specific keys override "*" field by field. */
  endpoints: Partial<Record<Operation | '*', EndpointFaults>>;
  webhooks: WebhookFaults;
}

/** What callers may send: like SandboxFaults, but an outage can be relative. */
export interface SandboxFaultsInput {
  endpoints?: Partial<Record<Operation | '*', EndpointFaults | null>>;
  webhooks?: Omit<WebhookFaults, 'outage'> & {
    outage?: (Partial<OutageWindow> & { startsInMs?: number; durationMs?: number | null }) | null;
  };
}

export type FaultDecision = { kind: 'none' } | { kind: 'error'; status: number; retryAfterSeconds: number } | { kind: 'hang'; hangMs: number | undefined };

export class FaultsError extends Error {}

const ENDPOINT_KEYS = new Set(['latencyMs', 'errorRate', 'failNext', 'errorStatus', 'retryAfterSeconds', 'timeoutRate', 'hangNext', 'hangMs', 'afterEffect']);

function checkEndpoint(name: string, faults: EndpointFaults): EndpointFaults {
  for (const [key, value] of Object.entries(faults)) {
    if (!ENDPOINT_KEYS.has(key)) throw new FaultsError(`Unknown fault "${key}" for ${name}.`);
    if (key === 'afterEffect') {
      if (typeof value !== 'boolean') throw new FaultsError(`${name}.afterEffect must be a boolean.`);
    } else if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new FaultsError(`${name}.${key} must be a non-negative number.`);
    } else if ((key === 'errorRate' || key === 'timeoutRate') && value > 1) {
      throw new FaultsError(`${name}.${key} is a probability between 0 and 1.`);
    } else if (key === 'errorStatus' && (value < 400 || value > 599)) {
      throw new FaultsError(`${name}.errorStatus must be a 4xx or 5xx status.`);
    }
  }
  return faults;
}

export class FaultState {
  #faults: SandboxFaults = { endpoints: {}, webhooks: {} };
  readonly #random: () => number;

  constructor(initial?: SandboxFaultsInput, random: () => number = Math.random) {
    this.#random = random;
    if (initial) this.patch(initial);
  }

  get(): SandboxFaults {
    return structuredClone(this.#faults);
  }

  reset(): void {
    this.#faults = { endpoints: {}, webhooks: {} };
  }

  replace(input: SandboxFaultsInput): void {
    const previous = this.#faults;
    this.reset();
    try {
      this.patch(input);
    } catch (error) {
      this.#faults = previous;
      throw error;
    }
  }

  /** Merges field by field; `null` for an endpoint or the outage clears it. Validates everything first. */
  patch(input: SandboxFaultsInput): void {
    if (input === null || typeof input !== 'object') throw new FaultsError('Faults must be a JSON object.');
    const next = structuredClone(this.#faults);
    for (const key of Object.keys(input)) {
      if (key !== 'endpoints' && key !== 'webhooks') throw new FaultsError(`Unknown fault group "${key}" (use endpoints, webhooks).`);
    }
    for (const [name, faults] of Object.entries(input.endpoints ?? {})) {
      if (name !== '*' && !(OPERATIONS as readonly string[]).includes(name)) {
        throw new FaultsError(`Unknown operation "${name}"; known: *, ${OPERATIONS.join(', ')}.`);
      }
      const op = name as Operation | '*';
      if (faults === null) delete next.endpoints[op];
      else next.endpoints[op] = { ...next.endpoints[op], ...checkEndpoint(name, faults) };
    }
    const webhooks = input.webhooks;
    if (webhooks) {
      for (const key of Object.keys(webhooks)) {
        if (!['duplicateRate', 'outOfOrderWindowMs', 'outage'].includes(key)) throw new FaultsError(`Unknown webhook fault "${key}".`);
      }
      if (webhooks.duplicateRate !== undefined) {
        if (!(webhooks.duplicateRate >= 0 && webhooks.duplicateRate <= 1)) throw new FaultsError('webhooks.duplicateRate is a probability between 0 and 1.');
        next.webhooks.duplicateRate = webhooks.duplicateRate;
      }
      if (webhooks.outOfOrderWindowMs !== undefined) {
        if (!(webhooks.outOfOrderWindowMs >= 0)) throw new FaultsError('webhooks.outOfOrderWindowMs must be a non-negative number.');
        next.webhooks.outOfOrderWindowMs = webhooks.outOfOrderWindowMs;
      }
      if (webhooks.outage === null) next.webhooks.outage = null;
      else if (webhooks.outage !== undefined) next.webhooks.outage = outageFrom(webhooks.outage);
    }
    this.#faults = next;
  }

  /** Decides what happens to one request of `operation` (counting down failNext/hangNext). */
  decide(operation: Operation): { latencyMs: number; afterEffect: boolean; decision: FaultDecision } {
    const star = this.#faults.endpoints['*'];
    const own = this.#faults.endpoints[operation];
    const merged: EndpointFaults = { ...star, ...own };
    const latencyMs = merged.latencyMs ?? 0;
    const afterEffect = merged.afterEffect ?? false;
    const countDown = (key: 'failNext' | 'hangNext'): boolean => {
      const holder = own?.[key] !== undefined ? own : star?.[key] !== undefined ? star : undefined;
      if (!holder || !holder[key]) return false;
      holder[key] = holder[key]! - 1;
      return true;
    };
    if (countDown('hangNext') || (merged.timeoutRate ?? 0) > this.#random()) {
      return { latencyMs, afterEffect, decision: { kind: 'hang', hangMs: merged.hangMs } };
    }
    if (countDown('failNext') || (merged.errorRate ?? 0) > this.#random()) {
      return { latencyMs, afterEffect, decision: { kind: 'error', status: merged.errorStatus ?? 500, retryAfterSeconds: merged.retryAfterSeconds ?? 1 } };
    }
    return { latencyMs, afterEffect, decision: { kind: 'none' } };
  }

  duplicateDelivery(): boolean {
    return (this.#faults.webhooks.duplicateRate ?? 0) > this.#random();
  }

  outOfOrderWindowMs(): number {
    return this.#faults.webhooks.outOfOrderWindowMs ?? 0;
  }

  /** The outage in force at `now`, if any (an ended window is cleared). */
  outageAt(now: number): OutageWindow | undefined {
    const outage = this.#faults.webhooks.outage;
    if (!outage) return undefined;
    if (outage.endsAt !== null && now >= outage.endsAt) {
      this.#faults.webhooks.outage = null;
      return undefined;
    }
    return now >= outage.startsAt ? outage : undefined;
  }

  /** Start of a future outage, for scheduling. */
  upcomingOutage(): OutageWindow | undefined {
    return this.#faults.webhooks.outage ?? undefined;
  }
}

function outageFrom(input: NonNullable<NonNullable<SandboxFaultsInput['webhooks']>['outage']>): OutageWindow {
  const now = Date.now();
  const startsAt = input.startsAt ?? now + (input.startsInMs ?? 0);
  const endsAt = input.endsAt !== undefined ? input.endsAt : input.durationMs === undefined || input.durationMs === null ? null : startsAt + input.durationMs;
  const mode = input.mode ?? 'delay';
  if (mode !== 'delay' && mode !== 'drop') throw new FaultsError('webhooks.outage.mode is "delay" or "drop".');
  if (!Number.isFinite(startsAt) || (endsAt !== null && !(endsAt >= startsAt))) throw new FaultsError('webhooks.outage must end after it starts.');
  return { startsAt, endsAt, mode };
}

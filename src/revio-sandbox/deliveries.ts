// Webhook delivery with Revio's retry behaviour (REVIO_API.md §4):
// - success is any 2xx; otherwise up to 8 more attempts with exponentially
//   growing gaps (30 s × 3^n: 30 s, 1.5 min, 4.5 min, 13.5 min, 40.5 min, 2 h,
//   6 h, 18 h; the schedule itself is an assumption), and nothing is sent
//   later than 36 h after the event;
// - per object and target, deliveries are ordered: the next event of an object
//   waits until the one before it was delivered or given up;
// - all those durations are multiplied by `timeScale`, so tests run them in ms.
// Fault knobs (faults.ts) add duplicates, out-of-order windows and outages.
import { randomUUID } from 'node:crypto';
import type { FaultState } from './faults.ts';
import type { Delivery, Store } from './store.ts';

export const RETRY_GAPS_SECONDS = [30, 90, 270, 810, 2430, 7290, 21870, 65610] as const;
export const MAX_ATTEMPTS = 1 + RETRY_GAPS_SECONDS.length;
export const DELIVERY_WINDOW_SECONDS = 36 * 3600;

export interface SandboxLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DeliveryEngineOptions {
  store: Store;
  faults: FaultState;
  /** Multiplies the retry gaps and the 36 h window; 1 = Revio's real pace. */
  timeScale: number;
  /** How long one attempt may take before it counts as failed. */
  timeoutMs: number;
  logger?: SandboxLogger;
}

export type NewDelivery = Pick<Delivery, 'target' | 'url' | 'objectId' | 'eventType' | 'body' | 'signature'>;

const queueKey = (d: Delivery) => `${d.target.kind === 'webhook' ? d.target.webhookId : `cb ${d.url}`}|${d.objectId}`;

export class DeliveryEngine {
  readonly #options: DeliveryEngineOptions;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  readonly #inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #stopped = true;
  #idleWaiters: (() => void)[] = [];

  constructor(options: DeliveryEngineOptions) {
    this.#options = options;
  }

  get #deliveries(): Delivery[] {
    return this.#options.store.state.deliveries;
  }

  start(): void {
    this.#stopped = false;
    this.poke();
  }

  /** Stops sending; in-flight attempts are aborted and stay pending (resumed after a restart). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const { controller } of this.#inFlight.values()) controller.abort();
    await Promise.all([...this.#inFlight.values()].map((f) => f.done));
  }

  /** Queues one delivery of an event to one target. */
  enqueue(input: NewDelivery): Delivery {
    const now = Date.now();
    const delivery: Delivery = { ...input, id: randomUUID(), triggeredAt: now, nextAttemptAt: now, attempts: [], state: 'pending' };
    const list = this.#deliveries;
    const outage = this.#options.faults.outageAt(now);
    if (outage?.mode === 'drop') {
      delivery.state = 'dropped';
      delivery.reason = 'raised during a webhook outage window (drop mode)';
      list.push(delivery);
    } else {
      const window = this.#options.faults.outOfOrderWindowMs();
      const key = queueKey(delivery);
      // Out of order on purpose: a new event of an object whose earlier events
      // are still held jumps ahead of them, so the newest goes first.
      const heldIndex = window > 0 ? list.findIndex((d) => d.state === 'pending' && d.attempts.length === 0 && d.nextAttemptAt > now && queueKey(d) === key) : -1;
      if (heldIndex >= 0) {
        delivery.nextAttemptAt = list[heldIndex].nextAttemptAt;
        list.splice(heldIndex, 0, delivery);
      } else {
        if (window > 0) delivery.nextAttemptAt = now + window;
        list.push(delivery);
      }
    }
    this.#options.store.changed();
    this.poke();
    return delivery;
  }

  /** Re-evaluates what is due (after a change of faults or state). */
  poke(): void {
    if (this.#stopped) return;
    queueMicrotask(() => this.#tick());
  }

  /** Resolves when nothing is pending or in flight. */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.#inFlight.size === 0 && !this.#deliveries.some((d) => d.state === 'pending');
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length && this.#isIdle()) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #schedule(at: number): void {
    if (this.#stopped || at === Infinity) return;
    if (this.#timer && at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#tick();
    }, Math.max(0, at - Date.now()));
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const outage = this.#options.faults.outageAt(now);
    if (outage) {
      // Nothing leaves while Revio's sender is down; resume when the window ends
      // (an open-ended window waits for the faults to change: poke()).
      if (outage.endsAt !== null) this.#schedule(outage.endsAt);
      return;
    }
    const heads = new Map<string, Delivery>();
    for (const d of this.#deliveries) {
      if (d.state !== 'pending') continue;
      const key = queueKey(d);
      if (!heads.has(key)) heads.set(key, d);
    }
    let next = Infinity;
    for (const head of heads.values()) {
      if (this.#inFlight.has(head.id)) continue;
      if (head.nextAttemptAt <= now) this.#attempt(head);
      else next = Math.min(next, head.nextAttemptAt);
    }
    const upcoming = this.#options.faults.upcomingOutage();
    if (upcoming && upcoming.startsAt > now) next = Math.min(next, upcoming.startsAt);
    this.#schedule(next);
    this.#notifyIdle();
  }

  #attempt(delivery: Delivery): void {
    const controller = new AbortController();
    const done = this.#send(delivery, controller).finally(() => {
      this.#inFlight.delete(delivery.id);
      this.#options.store.changed();
      if (!this.#stopped) this.#tick();
      this.#notifyIdle();
    });
    this.#inFlight.set(delivery.id, { controller, done });
  }

  async #send(delivery: Delivery, controller: AbortController): Promise<void> {
    const { timeScale, timeoutMs, logger, faults } = this.#options;
    const started = Date.now();
    const deadline = delivery.triggeredAt + DELIVERY_WINDOW_SECONDS * 1000 * timeScale;
    if (started > deadline) {
      this.#finish(delivery, 'failed', 'not delivered within 36 h of the event');
      return;
    }
    let status: number | undefined;
    let error: string | undefined;
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': delivery.signature, 'user-agent': 'Revio-Sandbox-Webhooks/1' },
        body: delivery.body,
        redirect: 'manual',
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]),
      });
      status = response.status;
      await response.body?.cancel();
    } catch (caught) {
      if (controller.signal.aborted) return; // the sandbox is stopping: not an attempt
      const cause = (caught as Error).cause as NodeJS.ErrnoException | undefined;
      error = (caught as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (caught as Error).message);
    }
    const now = Date.now();
    delivery.attempts.push({ at: started, ms: now - started, ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error }) });
    const log = { delivery: delivery.id, event: delivery.eventType, object: delivery.objectId, attempt: delivery.attempts.length, status, error };
    if (status !== undefined && status >= 200 && status < 300) {
      logger?.info(log, 'webhook delivered');
      this.#finish(delivery, 'delivered');
      if (!delivery.duplicateOf && faults.duplicateDelivery()) {
        // A lost acknowledgement: the same bytes and signature arrive once more.
        const copy: Delivery = { ...delivery, id: randomUUID(), attempts: [], state: 'pending', nextAttemptAt: now, duplicateOf: delivery.id };
        const list = this.#deliveries;
        list.splice(list.indexOf(delivery) + 1, 0, copy);
      }
      return;
    }
    logger?.warn(log, 'webhook delivery failed');
    if (delivery.attempts.length >= MAX_ATTEMPTS) {
      this.#finish(delivery, 'failed', `no 2xx after ${MAX_ATTEMPTS} attempts`);
      return;
    }
    const next = now + RETRY_GAPS_SECONDS[delivery.attempts.length - 1] * 1000 * timeScale;
    if (next > deadline) this.#finish(delivery, 'failed', 'the next retry would fall after 36 h from the event');
    else delivery.nextAttemptAt = next;
  }

  #finish(delivery: Delivery, state: 'delivered' | 'failed', reason?: string): void {
    delivery.state = state;
    if (reason) delivery.reason = reason;
  }
}

// What every sandbox resource shares: settings, the store, the signing key,
// the fault knobs, the delivery engine, and `emit`, which turns a state change
// into signed webhook (and success_callback) deliveries.
import { signRevioBody } from '../revio/signature.ts';
import type { StatusHistoryEntry } from '../revio/types.ts';
import { DeliveryEngine } from './deliveries.ts';
import type { FaultState } from './faults.ts';
import type { SandboxKeys } from './keys.ts';
import type { Store } from './store.ts';

export interface CoreSettings {
  apiKey: string;
  brandId: string;
  companyId: string;
  currency: string;
  pageSize: number;
  /** ms after execution at which a pending payout settles by itself; undefined = only by hand. */
  payoutAutoCompleteMs: number | undefined;
  /** Revio's fee on a paid purchase in basis points (payment.fee_amount); default 0. */
  feeBps: number;
}

export class SandboxCore {
  readonly settings: CoreSettings;
  readonly store: Store;
  readonly keys: SandboxKeys;
  readonly faults: FaultState;
  readonly engine: DeliveryEngine;
  /** Base of checkout_url, execution_url and list links; set once listening. */
  publicUrl = '';
  /** How the refund call answers (refunds.ts); set through /_sandbox/refund-mode. */
  refundMode: 'instant' | 'pending' = 'instant';
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(settings: CoreSettings, store: Store, keys: SandboxKeys, faults: FaultState, engine: DeliveryEngine) {
    this.settings = settings;
    this.store = store;
    this.keys = keys;
    this.faults = faults;
    this.engine = engine;
  }

  /** Unix seconds, Revio's timestamp unit. */
  now(): number {
    return Math.floor(Date.now() / 1000);
  }

  /** Sets `status`, stamps `updated_on` and appends to `status_history`. */
  transition(object: { status: string; updated_on: number; status_history: StatusHistoryEntry[] }, status: string): void {
    const at = this.now();
    object.status = status;
    object.updated_on = at;
    object.status_history.push({ status, timestamp: at });
  }

  /**
   * Queues a signed delivery of `{...object, event_type}` to every webhook
   * subscribed to `eventType`, and to `successCallback` when given (signed
   * with the same company key).
   */
  emit(eventType: string, object: { id: string }, successCallback?: string | null): void {
    const body = JSON.stringify({ ...object, event_type: eventType });
    const signature = signRevioBody(body, this.keys.privateKey);
    for (const webhook of Object.values(this.store.state.webhooks)) {
      if (!webhook.all_events && !webhook.events.includes(eventType)) continue;
      this.engine.enqueue({ target: { kind: 'webhook', webhookId: webhook.id }, url: webhook.callback, objectId: object.id, eventType, body, signature });
    }
    if (successCallback) {
      this.engine.enqueue({ target: { kind: 'success_callback' }, url: successCallback, objectId: object.id, eventType, body, signature });
    }
    this.store.changed();
  }

  /** A timer cleared on close (payout auto-completion). */
  later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
  }

  clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /** A list page in Revio's `{results, next, previous}` layout; links are absolute. */
  page<T>(items: T[], path: string, query: URLSearchParams): { results: T[]; next: string | null; previous: string | null } {
    const size = this.settings.pageSize;
    const requested = Number(query.get('page') ?? '1');
    const page = Number.isInteger(requested) && requested >= 1 ? requested : 1;
    const link = (n: number) => {
      const params = new URLSearchParams(query);
      params.set('page', String(n));
      return `${this.publicUrl}/api/v1/${path}?${params}`;
    };
    return {
      results: items.slice((page - 1) * size, page * size),
      next: page * size < items.length ? link(page + 1) : null,
      previous: page > 1 ? link(page - 1) : null,
    };
  }
}

// The sandbox's state: purchases, payouts, webhooks and the delivery outbox,
// in memory. Given a file, every change is written to it (atomically: a temp
// file then rename, coalesced to one write per tick) and reloaded on start, so
// a restarted sandbox keeps its objects, its key and its pending deliveries.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Payout, Purchase, RevioPayment, Webhook } from '../revio/types.ts';

export interface DeliveryAttempt {
  /** Epoch ms. */
  at: number;
  status?: number;
  error?: string;
  ms: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'dropped';

export interface Delivery {
  id: string;
  target: { kind: 'webhook'; webhookId: string } | { kind: 'success_callback' };
  url: string;
  objectId: string;
  eventType: string;
  /** The exact bytes sent (JSON text) and their X-Signature. */
  body: string;
  signature: string;
  /** Epoch ms of the event; Revio sends nothing later than 36 h (scaled) after it. */
  triggeredAt: number;
  nextAttemptAt: number;
  attempts: DeliveryAttempt[];
  state: DeliveryState;
  /** Why it failed or was dropped. */
  reason?: string;
  /** Set on the extra copy of a duplicated delivery. */
  duplicateOf?: string;
}

/** Sandbox-only facts about a payout's execution (never part of the Payout JSON). */
export interface PayoutExecution {
  provider: string;
  accountLast4: string;
  accountInstitution: string;
  executedAt: number;
}

export interface SandboxState {
  version: 1;
  privateKeyPem?: string;
  counters: { purchase: number; payout: number };
  purchases: Record<string, Purchase>;
  payouts: Record<string, Payout>;
  payoutExecutions: Record<string, PayoutExecution>;
  webhooks: Record<string, Webhook>;
  /** Refund and chargeback Payments (refunds.ts); absent in older state files. */
  payments?: Record<string, RevioPayment>;
  /** Purchase id → amount of a refund waiting for /_sandbox/…/refund/complete|fail. */
  pendingRefunds?: Record<string, number>;
  /** Every delivery in creation order (per object and target, that is the queue order); finished ones are pruned. */
  deliveries: Delivery[];
}

/** Finished deliveries kept for inspection (older ones are forgotten). */
const FINISHED_KEPT = 2000;

export function emptyState(): SandboxState {
  return { version: 1, counters: { purchase: 0, payout: 0 }, purchases: {}, payouts: {}, payoutExecutions: {}, webhooks: {}, payments: {}, pendingRefunds: {}, deliveries: [] };
}

export class Store {
  state: SandboxState;
  readonly #file: string | undefined;
  #closed = false;
  #scheduled = false;
  #dirty = false;

  constructor(file: string | undefined) {
    this.#file = file;
    this.state = file && existsSync(file) ? Store.#load(file) : emptyState();
  }

  static #load(file: string): SandboxState {
    let parsed: SandboxState;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as SandboxState;
    } catch (error) {
      throw new Error(`The Revio sandbox state file ${file} is not valid JSON (${(error as Error).message}); move it away to start empty.`);
    }
    if (parsed.version !== 1) throw new Error(`The Revio sandbox state file ${file} has unknown version ${String(parsed.version)}.`);
    return { ...emptyState(), ...parsed };
  }

  /** Marks the state changed; written at the end of the current tick, or before the response of the request that changed it (flushIfDirty). */
  changed(): void {
    if (!this.#file) return this.#prune();
    this.#dirty = true;
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#dirty) this.flush();
    });
  }

  /**
   * Writes now if anything changed. Called before a POST/PATCH/DELETE answers
   * (server.ts), so a sandbox killed with SIGKILL (the fault suite does) never
   * forgets a purchase or payout it acknowledged, as Revio would not. Writing
   * only at the end of the tick lost payouts whose creation had been answered:
   * the product then got 404 for its own payout.
   */
  flushIfDirty(): void {
    if (this.#dirty && !this.#closed) this.flush();
  }

  /** Writes now (also used on close). */
  flush(): void {
    if (!this.#file) return;
    this.#dirty = false;
    this.#prune();
    mkdirSync(dirname(this.#file), { recursive: true });
    const temp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.state), { mode: 0o600 });
    renameSync(temp, this.#file);
  }

  close(): void {
    this.flush();
    this.#closed = true;
  }

  #prune(): void {
    const finished = this.state.deliveries.filter((d) => d.state !== 'pending');
    if (finished.length <= FINISHED_KEPT) return;
    const drop = new Set(finished.slice(0, finished.length - FINISHED_KEPT).map((d) => d.id));
    this.state.deliveries = this.state.deliveries.filter((d) => !drop.has(d.id));
  }
}

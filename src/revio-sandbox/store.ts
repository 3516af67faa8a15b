// The sandbox's state: purchases, payouts, webhooks and the delivery outbox,
// in memory (`Store.state`). Given a file, it is also on disk, as a snapshot
// (the file itself: the state as one JSON object, the format older files have,
// plus `journalSeq`) and an append-only journal next to it (`<file>.journal`,
// one JSON line per flush holding only what changed since the line before).
// A restart loads the snapshot and replays the journal, so a restarted
// sandbox keeps its objects, its key and its pending deliveries. At start, at
// close and once the journal outgrows the snapshot, the journal is folded into
// a fresh snapshot (#compact says why a crash there is harmless). While the
// sandbox runs the snapshot alone is out of date: readers use readStateFile.
//
// Why a journal: a flush must cost what changed, not what exists. Rewriting
// the whole state on every change took ~0.5 s of blocking CPU once a
// 30-minute fault run had grown it to ~13 MB, and the sandbox stopped
// answering within the product's 1.5 s timeouts; a real provider does not
// slow down as its history grows. Durability is unchanged: what a request
// changed is appended before its answer leaves (flushIfDirty, server.ts), so
// a SIGKILL at any moment loses nothing acknowledged; changes made outside a
// request (delivery attempts) are appended within FLUSH_DELAY_MS.
//
// What changed is found without the callers' help: `state`, its record
// collections (purchases, payouts, payoutExecutions, webhooks, payments), the
// deliveries list and everything reached through them are Proxies that note
// (collection, id) on any write, however deep (`purchase.status_history.push`
// marks the purchase). Callers read and write `store.state` as plain objects;
// what they store is unwrapped first, so the raw state never holds a proxy,
// and the journal is serialised from the raw objects. Keep to `store.state`:
// an object stored and then changed through a reference kept from before is
// only written if something else marks its record.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
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
  /** The bank's answer, decided at execution (the reject account): kept so a restart settles it the same way. */
  rejected?: boolean;
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

/**
 * Finished deliveries kept for inspection (older ones are forgotten). Each is
 * ~2 KB (it holds the body sent), and the list is reloaded on every start.
 */
const FINISHED_KEPT = 300;
/** Changes made outside a request are written at most this long after (coalesced). */
const FLUSH_DELAY_MS = 100;
/** The journal is folded into a new snapshot once it outgrows the snapshot, or this, whichever is larger. */
const COMPACT_MIN_BYTES = 1 << 20;

const COLLECTIONS = ['purchases', 'payouts', 'payoutExecutions', 'webhooks', 'payments'] as const;
type CollectionName = (typeof COLLECTIONS)[number];
const isCollection = (key: PropertyKey): key is CollectionName => (COLLECTIONS as readonly PropertyKey[]).includes(key);

type Obj = Record<string, unknown>;
type Raw = SandboxState & Obj;

/**
 * One journal line: the records written since the line before, whole (an
 * upsert replaces the record), and the ids removed. `seq` counts lines; the
 * snapshot names the last line it already contains (`journalSeq`).
 */
interface JournalLine {
  seq: number;
  /** Collections assigned as a whole (`state.payments ??= {}`); null: removed. */
  replace?: Partial<Record<CollectionName, Obj | null>>;
  del?: Partial<Record<CollectionName, string[]>>;
  set?: Partial<Record<CollectionName, Obj>>;
  /** The other top-level fields (version, counters, pendingRefunds, privateKeyPem) that changed, whole, and those removed. */
  top?: Obj;
  topDel?: string[];
  /**
   * Deliveries written whole by id, and how the list changed since the line
   * before: ids removed, ids inserted each after its predecessor (null: first),
   * or, when that cannot describe it, the whole order.
   */
  deliveries?: { set?: Record<string, Delivery>; del?: string[]; ins?: [string, string | null][]; order?: string[] };
}

/** What a proxy's writes mark: a record of a collection, a delivery (by id), or one of the other top-level fields (by name). */
interface Mark {
  kind: CollectionName | 'deliveries' | 'top';
  id: string;
}

export function emptyState(): SandboxState {
  return { version: 1, counters: { purchase: 0, payout: 0 }, purchases: {}, payouts: {}, payoutExecutions: {}, webhooks: {}, payments: {}, pendingRefunds: {}, deliveries: [] };
}

const journalOf = (file: string) => `${file}.journal`;

function wrappable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export class Store {
  /** The state, as proxies that record what changes (see the header). */
  readonly state: SandboxState;
  readonly #raw: Raw;
  readonly #file: string | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;

  // Proxies: raw object → its proxy (with what it reports to); proxy → raw object.
  readonly #proxies = new WeakMap<object, { proxy: object; kind: string; id: string }>();
  readonly #targets = new WeakMap<object, object>();

  // What changed since the last journal line.
  readonly #dirtyIds = new Map<Mark['kind'], Set<string>>();
  readonly #replaced = new Set<CollectionName>();
  #orderDirty = false;
  /** Delivery objects already part of the list (a splice moves them: not a change of theirs). */
  #knownDeliveries = new WeakSet<object>();
  /** Delivery ids in list order as of the last line (or snapshot). */
  #lastOrder: string[] = [];

  // The files.
  #journalFd: number | undefined;
  #seq = 0;
  #journalBytes = 0;
  #snapshotBytes = 0;
  /** A write failed: the journal may end in a partial line, so the next flush writes a snapshot instead. */
  #broken = false;

  constructor(file: string | undefined) {
    this.#file = file;
    if (file) {
      const loaded = loadStateFile(file);
      this.#raw = loaded.state as Raw;
      this.#seq = loaded.seq;
      mkdirSync(dirname(file), { recursive: true });
      this.#journalFd = openSync(journalOf(file), 'a', 0o600);
      this.#lastOrder = this.#raw.deliveries.map((d) => d.id);
      for (const d of this.#raw.deliveries) this.#knownDeliveries.add(d);
      // Start from a fresh snapshot and an empty journal (this also drops a torn last line).
      if (!loaded.snapshotExists || fstatSync(this.#journalFd).size > 0) this.#compact();
      else this.#snapshotBytes = statSync(file).size;
    } else {
      this.#raw = emptyState() as Raw;
    }
    this.state = this.#topProxy();
  }

  /** Marks the state changed; written within FLUSH_DELAY_MS, or before the response of the request that changed it (flushIfDirty). */
  changed(): void {
    if (!this.#file) return this.#prune();
    this.#orderDirty = true; // cheap to check: the list is small
    this.#touch();
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

  /** Appends what changed to the journal now (and compacts when the journal has outgrown the snapshot). */
  flush(): void {
    if (!this.#file || this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dirty = false;
    this.#prune();
    if (this.#broken) return this.#compact();
    this.#appendChanges();
    if (this.#journalBytes > Math.max(this.#snapshotBytes, COMPACT_MIN_BYTES)) this.#compact();
  }

  /** Folds the journal and what is left into a fresh snapshot and stops writing. */
  close(): void {
    if (this.#closed) return;
    if (this.#file) {
      this.#prune();
      this.#compact();
      closeSync(this.#journalFd!);
      this.#journalFd = undefined;
    }
    clearTimeout(this.#timer);
    this.#closed = true;
  }

  #touch(): void {
    this.#dirty = true;
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#dirty) this.flush();
    }, FLUSH_DELAY_MS);
  }

  #prune(): void {
    const finished = this.#raw.deliveries.filter((d) => d.state !== 'pending');
    if (finished.length <= FINISHED_KEPT) return;
    const drop = new Set(finished.slice(0, finished.length - FINISHED_KEPT).map((d) => d.id));
    this.#raw.deliveries = this.#raw.deliveries.filter((d) => !drop.has(d.id));
    this.#orderDirty = true;
  }

  // ---- The journal.

  /** One line with everything marked since the line before (nothing when nothing was). */
  #appendChanges(): void {
    const line = this.#takeChanges();
    if (!line) return;
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
    try {
      let at = 0;
      while (at < bytes.length) at += writeSync(this.#journalFd!, bytes, at);
    } catch (error) {
      // A partial line must not end up in the middle of the journal, and the
      // changes are already taken: write them as a snapshot (now, or at the
      // next flush if that fails too).
      this.#seq = line.seq;
      this.#broken = true;
      try {
        this.#writeSnapshotAndTruncate();
      } catch {
        this.#dirty = true; // retried by the next flush
        throw error;
      }
      return;
    }
    this.#seq = line.seq;
    this.#journalBytes += bytes.length;
  }

  #takeChanges(): JournalLine | undefined {
    const raw = this.#raw;
    const line: JournalLine = { seq: this.#seq + 1 };
    let any = false;
    for (const name of COLLECTIONS) {
      const ids = this.#dirtyIds.get(name);
      if (this.#replaced.has(name)) {
        (line.replace ??= {})[name] = (raw[name] as Obj | undefined) ?? null;
        any = true;
      } else if (ids?.size) {
        const records = raw[name] as Obj | undefined;
        for (const id of ids) {
          if (records && Object.hasOwn(records, id)) ((line.set ??= {})[name] ??= {})[id] = records[id];
          else ((line.del ??= {})[name] ??= []).push(id);
        }
        any = true;
      }
      ids?.clear();
    }
    this.#replaced.clear();
    const top = this.#dirtyIds.get('top');
    if (top?.size) {
      for (const key of top) {
        if (Object.hasOwn(raw, key)) (line.top ??= {})[key] = raw[key];
        else (line.topDel ??= []).push(key);
      }
      top.clear();
      any = true;
    }
    const deliveries = this.#takeDeliveryChanges();
    if (deliveries) {
      line.deliveries = deliveries;
      any = true;
    }
    return any ? line : undefined;
  }

  #takeDeliveryChanges(): JournalLine['deliveries'] {
    const list = this.#raw.deliveries;
    const dirty = this.#dirtyIds.get('deliveries') ?? new Set<string>();
    const out: NonNullable<JournalLine['deliveries']> = {};
    if (this.#orderDirty) {
      this.#orderDirty = false;
      const now = list.map((d) => d.id);
      const before = this.#lastOrder;
      const nowSet = new Set(now);
      const beforeSet = new Set(before);
      // The list only ever gains and loses deliveries; those it keeps stay in
      // their order, so "removed" plus "inserted after" describes the change.
      const kept = before.filter((id) => nowSet.has(id));
      const keptNow = now.filter((id) => beforeSet.has(id));
      const inserted = now.flatMap((id, i): [string, string | null][] => (beforeSet.has(id) ? [] : [[id, i === 0 ? null : now[i - 1]]]));
      for (const [id] of inserted) dirty.add(id);
      if (kept.length !== keptNow.length || kept.some((id, i) => keptNow[i] !== id) || nowSet.size !== now.length) {
        out.order = now;
      } else {
        const removed = before.filter((id) => !nowSet.has(id));
        if (removed.length) out.del = removed;
        if (inserted.length) out.ins = inserted;
      }
      this.#lastOrder = now;
    }
    if (dirty.size) {
      const byId = new Map(list.map((d) => [d.id, d]));
      for (const id of dirty) {
        const delivery = byId.get(id);
        if (delivery) (out.set ??= {})[id] = delivery;
      }
      dirty.clear();
    }
    return out.set || out.del || out.ins || out.order ? out : undefined;
  }

  /**
   * Folds the journal (and any change not appended yet) into a new snapshot.
   * A crash at any point loses nothing and applies nothing twice:
   * 1. the snapshot, which records the last journal line it contains
   *    (`journalSeq`), goes to a temp file renamed over the old one: a crash
   *    before the rename leaves the old snapshot + the whole journal, that is
   *    everything acknowledged (a request's changes are appended before its
   *    answer);
   * 2. the journal is truncated: a crash before that leaves the new snapshot +
   *    lines it already contains, and loading skips them (seq ≤ journalSeq).
   *    For the records the skip is only a saving: a line writes records whole
   *    and deletes by id, so replaying lines onto the newer snapshot would end
   *    on each touched record's last written value, which is what that
   *    snapshot holds. The deliveries' order steps ("insert after") are
   *    relative and must not be applied twice: that is what the seq is for.
   * Appends then continue with journalSeq + 1.
   */
  #compact(): void {
    this.#takeChanges(); // all of it goes into the snapshot
    this.#writeSnapshotAndTruncate();
  }

  #writeSnapshotAndTruncate(): void {
    this.#writeSnapshot();
    ftruncateSync(this.#journalFd!, 0);
    this.#journalBytes = 0;
    this.#broken = false;
  }

  #writeSnapshot(): void {
    const file = this.#file!;
    const temp = `${file}.${process.pid}.tmp`;
    const text = JSON.stringify({ ...this.#raw, journalSeq: this.#seq });
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, file);
    this.#snapshotBytes = Buffer.byteLength(text);
    this.#lastOrder = this.#raw.deliveries.map((d) => d.id);
  }

  // ---- Change tracking.

  /** Notes a write to `mark` (none: the caller noted what changed) and schedules a flush. */
  #mark(mark?: Mark): void {
    if (!this.#file || this.#closed) return;
    if (mark) {
      let ids = this.#dirtyIds.get(mark.kind);
      if (!ids) this.#dirtyIds.set(mark.kind, (ids = new Set()));
      ids.add(mark.id);
    }
    this.#touch();
  }

  /** A proxy → its raw object; a new value's nested proxies are replaced in place by theirs. */
  #unwrap<T>(value: T, seen?: Set<object>): T {
    if (typeof value !== 'object' || value === null) return value;
    const target = this.#targets.get(value);
    if (target) return target as T;
    if (!wrappable(value)) return value;
    seen ??= new Set();
    if (seen.has(value)) return value;
    seen.add(value);
    const object = value as Obj;
    for (const key of Object.keys(object)) {
      const child = object[key];
      if (typeof child !== 'object' || child === null) continue;
      const raw = this.#unwrap(child, seen);
      if (raw !== child) object[key] = raw;
    }
    return value;
  }

  /**
   * The proxy of `target` that reports to (kind, id), made once and cached
   * (an object reached under another mark gets another proxy). `parent` and
   * `key`: where `target` was read, for the own-property check.
   */
  #proxy(target: object, kind: string, id: string, make: () => ProxyHandler<object>, parent?: object, key?: string): object {
    const hit = this.#proxies.get(target);
    if (hit && hit.kind === kind && hit.id === id) return hit.proxy;
    if (!wrappable(target) || (parent && !Object.hasOwn(parent, key!))) return target;
    const proxy = new Proxy(target, make());
    this.#proxies.set(target, { proxy, kind, id });
    this.#targets.set(proxy, target);
    return proxy;
  }

  /**
   * A handler whose writes store raw values and report to `onWrite`, and whose
   * reads of objects go through `wrap` (a proxy for own plain objects/arrays).
   */
  #handler(wrap: (value: object, key: string, target: object) => object, onWrite: (key: PropertyKey, after: unknown) => void): ProxyHandler<object> {
    return {
      get: (target, key) => {
        const value = (target as Record<PropertyKey, unknown>)[key];
        return typeof value === 'object' && value !== null && typeof key === 'string' ? wrap(value, key, target) : value;
      },
      set: (target, key, value) => {
        const raw = this.#unwrap(value);
        if ((typeof raw !== 'object' || raw === null) && Object.is((target as Record<PropertyKey, unknown>)[key], raw) && Object.hasOwn(target, key)) return true;
        if (!Reflect.set(target, key, raw)) return false;
        onWrite(key, raw);
        return true;
      },
      deleteProperty: (target, key) => {
        if (!Object.hasOwn(target, key)) return true;
        if (!Reflect.deleteProperty(target, key)) return false;
        onWrite(key, undefined);
        return true;
      },
      defineProperty: (target, key, descriptor) => {
        const raw = 'value' in descriptor ? { ...descriptor, value: this.#unwrap(descriptor.value as unknown) } : descriptor;
        if (!Reflect.defineProperty(target, key, raw)) return false;
        onWrite(key, raw.value);
        return true;
      },
    };
  }

  /** Anything inside a record (or the small top-level fields): every write marks (kind, id). */
  #deep(target: object, kind: Mark['kind'], id: string, parent?: object, key?: string): object {
    return this.#proxy(
      target,
      kind,
      id,
      () => {
        const mark: Mark = { kind, id };
        return this.#handler(
          (value, k, t) => this.#deep(value, kind, id, t, k),
          () => this.#mark(mark),
        );
      },
      parent,
      key,
    );
  }

  /** purchases, payouts, …: key = record id. */
  #collection(target: object, name: CollectionName): object {
    return this.#proxy(target, 'collection', name, () =>
      this.#handler(
        (value, id, t) => this.#deep(value, name, id, t, id),
        (id) => typeof id === 'string' && this.#mark({ kind: name, id }),
      ),
    );
  }

  /** The deliveries list: an element is marked by its id; any write to the list changes its order. */
  #deliveryList(target: object): object {
    return this.#proxy(target, 'list', '', () =>
      this.#handler(
        (value, key, t) => this.#deep(value, 'deliveries', String((value as Delivery).id), t, key),
        (_key, after) => {
          this.#orderDirty = true;
          this.#noteDelivery(after);
          this.#mark();
        },
      ),
    );
  }

  /** A delivery object new to the list is written whole. */
  #noteDelivery(value: unknown): void {
    if (!this.#file || typeof value !== 'object' || value === null || this.#knownDeliveries.has(value)) return;
    this.#knownDeliveries.add(value);
    const id = (value as Delivery).id;
    if (typeof id === 'string') this.#mark({ kind: 'deliveries', id });
  }

  #topProxy(): SandboxState {
    return this.#proxy(this.#raw, 'state', '', () =>
      this.#handler(
        (value, key, t) => (isCollection(key) ? this.#collection(value, key) : key === 'deliveries' ? this.#deliveryList(value) : this.#deep(value, 'top', key, t, key)),
        (key, after) => {
          if (isCollection(key)) {
            this.#replaced.add(key);
            this.#mark();
          } else if (key === 'deliveries') {
            this.#orderDirty = true;
            if (Array.isArray(after)) for (const d of after) this.#noteDelivery(d);
            this.#mark();
          } else if (typeof key === 'string') this.#mark({ kind: 'top', id: key });
        },
      ),
    ) as SandboxState;
  }
}

export interface LoadedState {
  state: SandboxState;
  /** The last journal line applied. */
  seq: number;
  snapshotExists: boolean;
}

/**
 * Reads a state file: the snapshot, then its journal's lines in order. An
 * unparseable last line is a write cut short by a kill (its request was never
 * answered) and is ignored; anywhere else it is an error.
 */
export function loadStateFile(file: string): LoadedState {
  const journal = journalOf(file);
  // The journal first: a compaction between the two reads then shows as a gap (below), not as lost lines.
  const journalText = existsSync(journal) ? readFileSync(journal, 'utf8') : '';
  const snapshotExists = existsSync(file);
  if (!snapshotExists && journalText.trim() !== '') {
    throw new Error(`The Revio sandbox journal ${journal} exists without its snapshot ${file}; move the journal away too to start empty.`);
  }
  let parsed: SandboxState & { journalSeq?: number };
  if (snapshotExists) {
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as SandboxState & { journalSeq?: number };
    } catch (error) {
      throw new Error(`The Revio sandbox state file ${file} is not valid JSON (${(error as Error).message}); move it and ${journal} away to start empty.`);
    }
    if (parsed.version !== 1) throw new Error(`The Revio sandbox state file ${file} has unknown version ${String(parsed.version)}.`);
  } else {
    parsed = emptyState();
  }
  const { journalSeq, ...snapshot } = parsed;
  const state = { ...emptyState(), ...snapshot } as Raw;
  let seq = journalSeq ?? 0;

  const lines = journalText.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const deliveries = new Map(state.deliveries.map((d) => [d.id, d]));
  let order = state.deliveries.map((d) => d.id);
  const corrupt = (n: number, why: string) => new Error(`The Revio sandbox journal ${journal} is corrupt at line ${n} of ${lines.length} (${why}); move it and ${file} away to start empty.`);
  for (const [i, text] of lines.entries()) {
    let line: JournalLine;
    try {
      line = JSON.parse(text) as JournalLine;
      if (typeof line !== 'object' || line === null || !Number.isInteger(line.seq)) throw new Error('not a journal line');
    } catch (error) {
      if (i === lines.length - 1) break; // torn by a kill mid-append
      throw corrupt(i + 1, (error as Error).message);
    }
    if (line.seq <= seq) continue; // already in the snapshot (a crash between its rename and the truncation)
    if (line.seq !== seq + 1) throw corrupt(i + 1, `line ${line.seq} follows ${seq}`);
    seq = line.seq;
    for (const [name, records] of Object.entries(line.replace ?? {}) as [CollectionName, Obj | null][]) {
      if (records === null) delete state[name];
      else state[name] = records as never;
    }
    for (const [name, ids] of Object.entries(line.del ?? {}) as [CollectionName, string[]][]) {
      const records = state[name] as Obj | undefined;
      if (records) for (const id of ids) delete records[id];
    }
    for (const [name, records] of Object.entries(line.set ?? {}) as [CollectionName, Obj][]) {
      const target = ((state[name] as Obj | undefined) ??= {}) as Obj;
      Object.assign(target, records);
    }
    for (const key of line.topDel ?? []) delete state[key];
    if (line.top) {
      if ('version' in line.top && line.top.version !== 1) throw corrupt(i + 1, `unknown version ${String(line.top.version)}`);
      Object.assign(state, line.top);
    }
    const d = line.deliveries;
    if (d) {
      for (const [id, delivery] of Object.entries(d.set ?? {})) deliveries.set(id, delivery);
      if (d.order) order = d.order;
      else {
        if (d.del) {
          const removed = new Set(d.del);
          order = order.filter((id) => !removed.has(id));
          for (const id of d.del) deliveries.delete(id);
        }
        for (const [id, after] of d.ins ?? []) {
          const at = after === null ? 0 : order.indexOf(after) + 1;
          if (at === 0 && after !== null) throw corrupt(i + 1, `delivery ${id} follows ${after}, which is not in the list`);
          order.splice(at, 0, id);
        }
      }
    }
  }
  state.deliveries = order.map((id) => {
    const delivery = deliveries.get(id);
    if (!delivery) throw new Error(`The Revio sandbox journal ${journal} lists delivery ${id} but never its content; move it and ${file} away to start empty.`);
    return delivery;
  });
  return { state, seq, snapshotExists };
}

/**
 * The state as written to `file` by a running (or stopped) sandbox: the
 * snapshot alone is not all of it. Retries when a compaction happened
 * between reading the journal and the snapshot.
 */
export function readStateFile(file: string): SandboxState {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return loadStateFile(file).state;
    } catch (error) {
      if (attempt >= 5 || !/ follows /.test((error as Error).message)) throw error;
    }
  }
}

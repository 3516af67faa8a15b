// The sandbox's store on disk (src/revio-sandbox/store.ts): snapshot + journal,
// with real files in a temp dir. A "kill" is a new Store on the same file
// without close() on the old one: only what a flush wrote is there.
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Purchase } from '../src/revio/index.ts';
import { emptyState, readStateFile, Store, type Delivery, type SandboxState } from '../src/revio-sandbox/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'revio-sandbox-store-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const newFile = () => join(dir, `state-${++n}.json`);
const journalOf = (file: string) => `${file}.journal`;
const journalSize = (file: string) => (existsSync(journalOf(file)) ? statSync(journalOf(file)).size : 0);
/** Plain JSON of a state (through the proxies). */
const plain = (state: SandboxState) => JSON.parse(JSON.stringify(state)) as SandboxState;

const open: Store[] = [];
const storeOn = (file: string | undefined) => {
  const store = new Store(file);
  open.push(store);
  return store;
};
afterAll(() => {
  for (const store of open) store.close();
});

function purchase(id: string, extra: object = {}): Purchase {
  return {
    id,
    type: 'purchase',
    status: 'created',
    status_history: [{ status: 'created', timestamp: 1 }],
    purchase: { currency: 'ZAR', products: [{ name: 'Deposit', price: 100, quantity: '1.0000' }], total: 100, metadata: { deposit_id: `d-${id}` } },
    transaction_data: { payment_method: '', country: '', attempts: [] },
    client: { email: 'p@example.com' },
    reference: `ref-${id}`,
    created_on: 1,
    updated_on: 1,
    ...extra,
  } as unknown as Purchase;
}

function delivery(id: string, state: Delivery['state'] = 'pending'): Delivery {
  return { id, target: { kind: 'webhook', webhookId: 'w1' }, url: 'http://127.0.0.1:1/hook', objectId: `o-${id}`, eventType: 'purchase.created', body: '{}', signature: 's', triggeredAt: 1, nextAttemptAt: 1, attempts: [], state };
}

/** A store with a bit of everything, flushed. */
function populate(store: Store): void {
  const state = store.state;
  state.privateKeyPem = 'PEM';
  for (const id of ['p1', 'p2', 'p3']) {
    state.counters.purchase += 1;
    state.purchases[id] = purchase(id);
  }
  state.payouts.po1 = { id: 'po1', status: 'initialized', status_history: [], transaction_data: { attempts: [] } } as never;
  state.webhooks.w1 = { id: 'w1', callback: 'http://127.0.0.1:1/hook', events: ['purchase.paid'] } as never;
  state.webhooks.w2 = { id: 'w2', callback: 'http://127.0.0.1:2/hook', events: [] } as never;
  state.deliveries.push(delivery('d1'), delivery('d2'));
  store.changed();
  store.flushIfDirty();
}

describe('Store on disk', () => {
  it('reloads after a kill what each flush wrote: records, nested changes, deletions, counters', () => {
    const file = newFile();
    const store = storeOn(file);
    populate(store);
    const state = store.state;
    // Nested mutations through records obtained in every usual way.
    state.purchases.p1.status_history.push({ status: 'paid', timestamp: 2 });
    state.purchases.p1.status = 'paid';
    state.purchases.p1.transaction_data.attempts.push({ type: 'execute', successful: true } as never);
    (state.purchases.p2.purchase.metadata as Record<string, unknown>).note = 'nested';
    for (const p of Object.values(state.purchases)) if (p.id === 'p3') p.updated_on = 99;
    delete state.webhooks.w2;
    state.payoutExecutions.po1 = { provider: 'bank', accountLast4: '3456', accountInstitution: 'FNB', executedAt: 5 };
    state.pendingRefunds ??= {};
    state.pendingRefunds.p1 = 50;
    state.counters.payout += 7;
    // A copy made by spreading a proxied record (its nested values are proxies) is stored raw.
    const original = state.webhooks.w1;
    state.webhooks.w1 = { ...original, events: [...original.events, 'purchase.created'] };
    state.deliveries[0].attempts.push({ at: 3, ms: 1, status: 500 });
    state.deliveries[1].state = 'delivered';
    store.flushIfDirty();
    const expected = plain(state);

    const reopened = storeOn(file); // no close(): as after SIGKILL
    expect(plain(reopened.state)).toEqual(expected);
    expect(reopened.state.purchases.p1.status_history.map((h) => h.status)).toEqual(['created', 'paid']);
    expect((reopened.state.purchases.p2.purchase.metadata as Record<string, unknown>).note).toBe('nested');
    expect(reopened.state.webhooks.w2).toBeUndefined();
    expect(reopened.state.webhooks.w1.events).toEqual(['purchase.paid', 'purchase.created']);
    expect(reopened.state.counters).toEqual({ purchase: 3, payout: 7 });
    expect(reopened.state.pendingRefunds).toEqual({ p1: 50 });
    expect(reopened.state.deliveries.map((d) => [d.id, d.state, d.attempts.length])).toEqual([['d1', 'pending', 1], ['d2', 'delivered', 0]]);
  });

  it('keeps the usual object semantics through the proxies', () => {
    const store = storeOn(newFile());
    populate(store);
    const state = store.state;
    expect(state.purchases.p1).toBe(state.purchases.p1);
    expect(Object.values(state.purchases)[0]).toBe(state.purchases.p1);
    expect(state.deliveries.indexOf(state.deliveries[1])).toBe(1);
    expect(Array.isArray(state.purchases.p1.status_history)).toBe(true);
    expect(JSON.parse(JSON.stringify(state.purchases.p1))).toEqual(purchase('p1'));
    expect({ ...state.purchases.p1 }).toEqual(purchase('p1'));
    expect(state.purchases.nope).toBeUndefined();
    expect('p1' in state.purchases && !('nope' in state.purchases)).toBe(true);
  });

  it('writes changes made outside a request within a short delay, and changes to an absent collection', async () => {
    const file = newFile();
    writeFileSync(file, JSON.stringify({ ...emptyState(), payments: undefined, pendingRefunds: undefined })); // an older file without them
    const store = storeOn(file);
    store.state.payments ??= {};
    store.state.payments.pay1 = { id: 'pay1', amount: 5 } as never;
    store.state.deliveries.push(delivery('late'));
    store.changed(); // no flushIfDirty: the background flush writes it
    await new Promise((resolve) => setTimeout(resolve, 300));
    const reopened = storeOn(file);
    expect(reopened.state.payments).toEqual({ pay1: { id: 'pay1', amount: 5 } });
    expect(reopened.state.deliveries.map((d) => d.id)).toEqual(['late']);
  });

  it('keeps the deliveries in order through inserts, removals and the pruning of finished ones', () => {
    const file = newFile();
    const store = storeOn(file);
    const list = () => store.state.deliveries;
    for (let i = 0; i < 310; i++) list().push(delivery(`f${i}`, 'delivered'));
    list().push(delivery('pending-1'));
    store.changed();
    store.flushIfDirty(); // prunes to 300 finished
    list().splice(list().findIndex((d) => d.id === 'pending-1'), 0, delivery('held')); // jumps ahead
    list().splice(list().indexOf(list()[5]) + 1, 0, delivery('dup')); // a duplicate right after a delivered one
    list()[7].state = 'dropped';
    store.changed();
    store.flushIfDirty();
    const ids = list().map((d) => d.id);
    expect(ids.length).toBe(303);
    expect(ids.slice(0, 2)).toEqual(['f10', 'f11']);
    const reopened = storeOn(file);
    expect(plain(reopened.state).deliveries).toEqual(plain(store.state).deliveries);
  });

  it('ignores a torn last journal line; a corrupt line in the middle is an error naming the file', () => {
    const file = newFile();
    const store = storeOn(file);
    populate(store);
    store.state.purchases.p1.status = 'paid';
    store.flushIfDirty();
    const expected = plain(store.state);
    const good = readFileSync(journalOf(file), 'utf8');
    expect(good.trim().split('\n').length).toBe(2);

    appendFileSync(journalOf(file), '{"seq":3,"set":{"purchases":{"p1":{"id":"p1","sta'); // killed mid-append
    expect(plain(readStateFile(file))).toEqual(expected);
    const reopened = storeOn(file);
    expect(plain(reopened.state)).toEqual(expected);
    expect(journalSize(file)).toBe(0); // folded into the snapshot at start; the torn line is gone

    const other = newFile();
    const second = storeOn(other);
    populate(second);
    second.state.purchases.p1.status = 'paid';
    second.flushIfDirty();
    const [first, last] = readFileSync(journalOf(other), 'utf8').trim().split('\n');
    writeFileSync(journalOf(other), `${first.slice(0, 20)}\n${last}\n`);
    expect(() => new Store(other)).toThrow(journalOf(other));
    expect(() => new Store(other)).toThrow(/corrupt at line 1/);
  });

  it('compacts on close: an empty journal and the same state on reopen', () => {
    const file = newFile();
    const store = storeOn(file);
    populate(store);
    store.state.purchases.p2.status = 'cancelled';
    store.flushIfDirty();
    expect(journalSize(file)).toBeGreaterThan(0);
    const expected = plain(store.state);
    store.close();
    expect(journalSize(file)).toBe(0);
    const snapshot = JSON.parse(readFileSync(file, 'utf8')) as SandboxState;
    expect(snapshot.purchases.p2.status).toBe('cancelled'); // the snapshot alone is the whole state again
    expect(plain(storeOn(file).state)).toEqual(expected);
  });

  it('gives the same state when a crash left the journal next to the newer snapshot (skipped or replayed)', () => {
    const file = newFile();
    const store = storeOn(file);
    populate(store);
    store.state.purchases.p1.status_history.push({ status: 'paid', timestamp: 2 });
    delete store.state.purchases.p3;
    store.state.deliveries.splice(0, 1);
    store.changed();
    store.flushIfDirty();
    store.state.purchases.p1.status = 'refunded';
    store.state.purchases.p3 = purchase('p3', { status: 'created again' });
    store.state.deliveries.push(delivery('d3'));
    store.changed();
    store.flushIfDirty();
    const oldJournal = readFileSync(journalOf(file));
    const expected = plain(store.state);
    store.close(); // writes the snapshot, then truncates the journal

    // A crash between the rename of the snapshot and the truncation: the lines are already in it (journalSeq) and skipped.
    writeFileSync(journalOf(file), oldJournal);
    expect(plain(readStateFile(file))).toEqual(expected);
    // Even replayed (a snapshot without journalSeq), whole-record upserts and deletions by id end on the same
    // records; the deliveries' order steps are relative, which is why lines carry seq and are skipped.
    const snapshot = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const replayed = newFile();
    writeFileSync(replayed, JSON.stringify({ ...snapshot, journalSeq: undefined }));
    writeFileSync(journalOf(replayed), oldJournal.toString().split('\n').filter(Boolean).map((line) => JSON.stringify({ ...JSON.parse(line), deliveries: undefined })).join('\n'));
    expect({ ...plain(readStateFile(replayed)), deliveries: [] }).toEqual({ ...expected, deliveries: [] });
    expect(plain(storeOn(file).state)).toEqual(expected);
  });

  it('starts from a snapshot written by the older store (no journal, no journalSeq)', () => {
    const file = newFile();
    const old = { ...emptyState(), privateKeyPem: 'PEM', counters: { purchase: 1, payout: 0 }, purchases: { p1: purchase('p1') }, deliveries: [delivery('d1')] };
    writeFileSync(file, JSON.stringify(old));
    const store = storeOn(file);
    expect(plain(store.state)).toEqual(old);
    store.state.purchases.p1.status = 'paid';
    store.flushIfDirty();
    expect(storeOn(file).state.purchases.p1.status).toBe('paid');
  });

  it('refuses a journal without its snapshot', () => {
    const file = newFile();
    writeFileSync(journalOf(file), '{"seq":1,"top":{"version":1}}\n');
    expect(() => new Store(file)).toThrow(/without its snapshot/);
  });

  it('folds the journal into the snapshot once it outgrows it', () => {
    const file = newFile();
    const store = storeOn(file);
    populate(store);
    const big = 'x'.repeat(4_000);
    let largest = 0;
    for (let i = 0; i < 400; i++) {
      store.state.purchases.p1.purchase.notes = `${big}${i}`;
      store.flushIfDirty();
      largest = Math.max(largest, journalSize(file));
    }
    // 400 lines of ~4 KB = 1.6 MB written, but never more than ~1 MiB (the floor) plus a line kept.
    expect(largest).toBeLessThan((1 << 20) + 8_000);
    expect(storeOn(file).state.purchases.p1.purchase.notes).toBe(`${big}399`);
  });

  it('appends a line whose size depends on the change, not on the state (20,000 purchases)', () => {
    const file = newFile();
    const store = storeOn(file);
    const state = store.state;
    for (let i = 0; i < 20_000; i++) state.purchases[`p${i}`] = purchase(`p${i}`);
    for (let i = 0; i < 300; i++) state.deliveries.push({ ...delivery(`f${i}`, 'delivered'), body: 'b'.repeat(2_000) });
    for (let i = 0; i < 50; i++) state.deliveries.push({ ...delivery(`q${i}`), body: 'b'.repeat(2_000) });
    store.changed();
    store.close(); // one big snapshot
    const reopened = storeOn(file);
    const snapshotBytes = statSync(file).size;
    expect(snapshotBytes).toBeGreaterThan(5_000_000);

    const appended = (change: () => void) => {
      const before = journalSize(file);
      change();
      reopened.changed();
      reopened.flushIfDirty();
      return journalSize(file) - before;
    };
    // One purchase paid (a nested push and two fields).
    const one = appended(() => {
      const p = reopened.state.purchases.p12345;
      p.status_history.push({ status: 'paid', timestamp: 2 });
      p.status = 'paid';
      p.updated_on = 2;
    });
    expect(one).toBeGreaterThan(0);
    expect(one).toBeLessThan(2_000);
    // A delivery attempt on a pending delivery.
    expect(appended(() => reopened.state.deliveries[310].attempts.push({ at: 5, ms: 1, status: 500 }))).toBeLessThan(4_000);
    // A new delivery, and a finished one pruned for it.
    expect(appended(() => {
      reopened.state.deliveries[320].state = 'delivered';
      reopened.state.deliveries.push({ ...delivery('new'), body: 'b'.repeat(2_000) });
    })).toBeLessThan(8_000);
    // Nothing changed: nothing written.
    expect(appended(() => {})).toBe(0);
    expect(plain(storeOn(file).state)).toEqual(plain(reopened.state));
  });

  it('works without a file (memory only)', () => {
    const store = storeOn(undefined);
    populate(store);
    store.state.purchases.p1.status = 'paid';
    store.flush();
    store.flushIfDirty();
    expect(store.state.purchases.p1.status).toBe('paid');
    expect(existsSync(journalOf('undefined'))).toBe(false);
  });
});

// Webhook delivery as Revio does it, with the sandbox's time scale so hours
// become milliseconds: retries until 2xx, giving up, duplicates, ordering per
// object, deliberately out-of-order deliveries, outage windows.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyRevioSignature, type RevioClient } from '../src/revio/index.ts';
import { MAX_ATTEMPTS, RETRY_GAPS_SECONDS, type RevioSandbox, type RevioSandboxOptions } from '../src/revio-sandbox/index.ts';
import { clientFor, events, FAST, startReceiver, startTestSandbox, type Receiver } from './helpers/revio.ts';

let receiver: Receiver;
let sandbox: RevioSandbox;
let revio: RevioClient;

async function setup(options: RevioSandboxOptions = {}) {
  sandbox = await startTestSandbox({ webhooks: [{ callback: `${receiver.url}/hook`, title: 'test' }], ...options });
  revio = clientFor(sandbox);
}

beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  await sandbox?.close();
  await receiver.close();
});

let seq = 0;
const newPurchase = () => revio.createPurchase({ amount: 1_000, reference: `wh-${++seq}`, client: { email: 'c@example.com' } });
const deliveriesOf = (id: string) => receiver.received.filter((r) => r.body.id === id);

describe('delivery with retries', () => {
  it('retries with growing gaps until the receiver answers 2xx, then stops', async () => {
    await setup();
    receiver.respond = (arrival) => (arrival.n <= 4 ? 503 : 204);
    const purchase = await newPurchase();
    await receiver.waitFor((r) => r.some((d) => d.answered === 204));
    await sandbox.whenDeliveriesIdle();
    const arrivals = deliveriesOf(purchase.id);
    expect(arrivals.map((a) => a.answered)).toEqual([503, 503, 503, 503, 204]);
    // Each retry is the same signed bytes.
    expect(new Set(arrivals.map((a) => a.raw.toString())).size).toBe(1);
    expect(arrivals.every((a) => verifyRevioSignature(a.raw, a.signature, sandbox.publicKeyPem))).toBe(true);
    // Gaps grow (30 s × 3^n at the real pace; here × FAST, so 3, 9, 27, 81 ms).
    const gaps = arrivals.slice(1).map((a, i) => a.at - arrivals[i].at);
    for (let i = 0; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(RETRY_GAPS_SECONDS[i] * 1000 * FAST - 2);
    expect(gaps[3]).toBeGreaterThan(gaps[0]);
    const [record] = sandbox.deliveries().filter((d) => d.objectId === purchase.id);
    expect(record).toMatchObject({ state: 'delivered', eventType: 'purchase.created' });
    expect(record.attempts).toHaveLength(5);
  });

  it('gives up after 1 + 8 attempts and moves on to the next event of the object', async () => {
    // The 8 gaps add up to 2.95 s and the 36 h window to 3.9 s: the 0.9 s between
    // them absorbs timer and scheduling delays on a loaded 2-core machine.
    await setup({ timeScale: 0.00003 });
    receiver.respond = (arrival) => (arrival.body.event_type === 'purchase.created' ? 500 : 200);
    const purchase = await newPurchase();
    sandbox.payPurchase(purchase.id);
    await receiver.waitFor((r) => r.some((d) => d.body.event_type === 'purchase.paid'), 10_000);
    expect(events(deliveriesOf(purchase.id))).toEqual([...Array(MAX_ATTEMPTS).fill('purchase.created'), 'purchase.paid']);
    const created = sandbox.deliveries().find((d) => d.objectId === purchase.id && d.eventType === 'purchase.created')!;
    expect(created).toMatchObject({ state: 'failed', reason: `no 2xx after ${MAX_ATTEMPTS} attempts` });
  });

  it('counts timeouts and refused connections as failed attempts too', async () => {
    await setup({ deliveryTimeoutMs: 100 });
    let answered = 0;
    // A receiver that never answers its first request: the sandbox times out and retries.
    const hangsOnce = createServer((req, res) => {
      req.resume();
      if (answered++ > 0) res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => hangsOnce.listen(0, '127.0.0.1', () => resolve()));
    const port = (hangsOnce.address() as AddressInfo).port;
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const nobody = `http://127.0.0.1:${closedPort}/`;
    try {
      await revio.createWebhook({ title: 'hangs once', callback: `http://127.0.0.1:${port}/`, events: ['purchase.created'] });
      await revio.createWebhook({ title: 'nobody home', callback: nobody, events: ['purchase.created'] });
      const purchase = await newPurchase();
      const record = (url: string) => sandbox.deliveries().find((d) => d.objectId === purchase.id && d.url === url)!;
      const deadline = Date.now() + 3_000;
      while (record(`http://127.0.0.1:${port}/`).state !== 'delivered' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      const viaHang = record(`http://127.0.0.1:${port}/`);
      expect(viaHang.state).toBe('delivered');
      expect(viaHang.attempts[0].error).toBe('no answer within 100 ms');
      expect(record(nobody).attempts[0].error).toBe('ECONNREFUSED');
    } finally {
      hangsOnce.closeAllConnections();
      hangsOnce.close();
    }
  });

  it('signs success_callback deliveries with the company key', async () => {
    await setup();
    const purchase = await revio.createPurchase({ amount: 700, reference: 'cb-1', client: { email: 'c@example.com' }, successCallback: `${receiver.url}/success` });
    sandbox.payPurchase(purchase.id);
    const received = await receiver.waitFor((r) => r.some((d) => d.path === '/success'));
    const callback = received.find((d) => d.path === '/success')!;
    expect(callback.body).toMatchObject({ id: purchase.id, event_type: 'purchase.paid', status: 'paid' });
    expect(verifyRevioSignature(callback.raw, callback.signature, await revio.getPublicKey())).toBe(true);
  });
});

describe('ordering, duplicates and outages', () => {
  it('delivers the events of one object in order: paid waits until created got its 2xx', async () => {
    await setup();
    receiver.respond = (a) => (a.body.event_type === 'purchase.created' && deliveriesOf(a.body.id).length < 2 ? 500 : 200);
    const purchase = await newPurchase();
    const other = await newPurchase();
    sandbox.payPurchase(purchase.id);
    sandbox.failPurchase(other.id);
    await receiver.waitFor(() => deliveriesOf(purchase.id).some((d) => d.body.event_type === 'purchase.paid') && deliveriesOf(other.id).length >= 4);
    const seen = deliveriesOf(purchase.id).map((d) => `${d.body.event_type}:${d.answered}`);
    expect(seen).toEqual(['purchase.created:500', 'purchase.created:500', 'purchase.created:200', 'purchase.paid:200']);
    expect(events(deliveriesOf(other.id)).at(-1)).toBe('purchase.payment_failure');
  });

  it('sends a delivery again after a 2xx when duplicates are switched on', async () => {
    await setup({ faults: { webhooks: { duplicateRate: 1 } } });
    const purchase = await newPurchase();
    sandbox.payPurchase(purchase.id);
    await receiver.waitFor(() => deliveriesOf(purchase.id).length === 4);
    await sandbox.whenDeliveriesIdle();
    const arrivals = deliveriesOf(purchase.id);
    expect(events(arrivals)).toEqual(['purchase.created', 'purchase.created', 'purchase.paid', 'purchase.paid']);
    expect(arrivals[3].raw.equals(arrivals[2].raw)).toBe(true);
    expect(arrivals[3].signature).toBe(arrivals[2].signature);
  });

  it('delivers newest first inside an out-of-order window', async () => {
    await setup();
    sandbox.faults.set({ webhooks: { outOfOrderWindowMs: 300 } });
    const purchase = await newPurchase();
    sandbox.failPurchase(purchase.id);
    sandbox.payPurchase(purchase.id);
    await receiver.waitFor(() => deliveriesOf(purchase.id).length === 3);
    expect(events(deliveriesOf(purchase.id))).toEqual(['purchase.paid', 'purchase.payment_failure', 'purchase.created']);
  });

  it('holds deliveries during an outage window (delay) and recovers afterwards', async () => {
    await setup();
    const started = Date.now();
    sandbox.faults.set({ webhooks: { outage: { durationMs: 300, mode: 'delay' } } });
    const purchase = await newPurchase();
    sandbox.payPurchase(purchase.id);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(deliveriesOf(purchase.id)).toHaveLength(0);
    await receiver.waitFor(() => deliveriesOf(purchase.id).length === 2);
    expect(deliveriesOf(purchase.id)[0].at - started).toBeGreaterThanOrEqual(290);
    expect(events(deliveriesOf(purchase.id))).toEqual(['purchase.created', 'purchase.paid']);
  });

  it('loses events raised during a drop outage; later events go through', async () => {
    await setup();
    sandbox.faults.set({ webhooks: { outage: { durationMs: 100, mode: 'drop' } } });
    const purchase = await newPurchase();
    await new Promise((resolve) => setTimeout(resolve, 150));
    sandbox.payPurchase(purchase.id);
    await receiver.waitFor(() => deliveriesOf(purchase.id).length === 1);
    await sandbox.whenDeliveriesIdle();
    expect(events(deliveriesOf(purchase.id))).toEqual(['purchase.paid']);
    expect(sandbox.deliveries().find((d) => d.eventType === 'purchase.created')?.state).toBe('dropped');
  });

  it('sends nothing later than 36 h (scaled) after the event', async () => {
    await setup({ timeScale: 0.000002 }); // 36 h → 259 ms
    sandbox.faults.set({ webhooks: { outage: { durationMs: 400, mode: 'delay' } } });
    const purchase = await newPurchase();
    await new Promise((resolve) => setTimeout(resolve, 450));
    await sandbox.whenDeliveriesIdle();
    expect(deliveriesOf(purchase.id)).toHaveLength(0);
    expect(sandbox.deliveries().find((d) => d.objectId === purchase.id)).toMatchObject({ state: 'failed', reason: 'not delivered within 36 h of the event' });
  });

  it('can be switched at runtime through the admin endpoint', async () => {
    await setup();
    const patch = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ webhooks: { outage: { mode: 'delay' } } }), // open-ended
    });
    expect(patch.status).toBe(200);
    const purchase = await newPurchase();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(deliveriesOf(purchase.id)).toHaveLength(0);
    const cleared = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'DELETE' });
    expect(await cleared.json()).toEqual({ endpoints: {}, webhooks: {} });
    await receiver.waitFor(() => deliveriesOf(purchase.id).length === 1);
  });
});

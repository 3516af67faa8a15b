// The Revio client against the sandbox over real HTTP: every call, and how
// failures are classified (final 4xx; retryable network/timeout/429/5xx).
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRevioClient, RevioError, isRetryable, type RevioClient, type Webhook } from '../src/revio/index.ts';
import type { RevioSandbox } from '../src/revio-sandbox/index.ts';
import { clientFor, startTestSandbox } from './helpers/revio.ts';

let sandbox: RevioSandbox;
let revio: RevioClient;
const logLines: object[] = [];

beforeAll(async () => {
  sandbox = await startTestSandbox({ pageSize: 2 });
  const collect = (obj: object, msg?: string) => void logLines.push({ ...obj, msg });
  revio = clientFor(sandbox, { logger: { debug: collect, warn: collect } });
});
afterAll(() => sandbox.close());

let seq = 0;
const ref = (label: string) => `${label}-${process.pid}-${++seq}`;
const customer = { email: 'customer@example.com' };

async function failure(promise: Promise<unknown>): Promise<RevioError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(RevioError);
  const revioError = error as RevioError;
  // No secret in anything a log or a job's last_error could carry.
  for (const text of [revioError.message, String(revioError), JSON.stringify(revioError), revioError.stack ?? '']) {
    expect(text).not.toContain(sandbox.apiKey);
  }
  return revioError;
}

describe('purchases', () => {
  it('creates a purchase in cents and ZAR, then gets it', async () => {
    const reference = ref('dep');
    const created = await revio.createPurchase({ amount: 12_345, reference, client: customer, successCallback: 'http://127.0.0.1:9/cb' });
    expect(created).toMatchObject({
      type: 'purchase',
      status: 'created',
      reference,
      brand_id: sandbox.brandId,
      is_test: true,
      payment: null,
      success_callback: 'http://127.0.0.1:9/cb',
      purchase: { currency: 'ZAR', total: 12_345, products: [{ name: 'Wallet deposit', price: 12_345 }] },
    });
    expect(created.checkout_url).toBe(`${sandbox.url}/p/${created.id}/`);
    expect(created.status_history).toEqual([{ status: 'created', timestamp: created.created_on }]);
    expect(Number.isInteger(created.created_on)).toBe(true);

    const fetched = await revio.getPurchase(created.id);
    expect(fetched.id).toBe(created.id);

    sandbox.payPurchase(created.id);
    const paid = await revio.getPurchase(created.id);
    expect(paid.status).toBe('paid');
    expect(paid.payment).toMatchObject({ amount: 12_345, currency: 'ZAR', net_amount: 12_345, fee_amount: 0, is_outgoing: false });
    expect(paid.status_history.map((h) => h.status)).toEqual(['created', 'paid']);
  });

  it('cancels a purchase so it can no longer be paid; cancelling a paid one is a final 400', async () => {
    const open = await revio.createPurchase({ amount: 500, reference: ref('dep'), client: customer, currency: 'usd' });
    expect(open.purchase.currency).toBe('USD');
    const cancelled = await revio.cancelPurchase(open.id);
    expect(cancelled.status).toBe('cancelled');
    expect(() => sandbox.payPurchase(open.id)).toThrow();

    const paid = await revio.createPurchase({ amount: 500, reference: ref('dep'), client: customer });
    sandbox.payPurchase(paid.id);
    const error = await failure(revio.cancelPurchase(paid.id));
    expect(error).toMatchObject({ kind: 'client', status: 400, code: 'purchase_cancel_error', retryable: false, outcomeUnknown: false });
    expect(error.revioMessage).toContain('paid');
  });

  it('finds purchases by our reference (sandbox extension), following next links', async () => {
    const reference = ref('dep-many');
    for (let i = 0; i < 3; i++) await revio.createPurchase({ amount: 100 + i, reference, client: customer });
    const found = await revio.findPurchasesByReference(reference);
    expect(found.map((p) => p.purchase.total)).toEqual([100, 101, 102]); // page size 2: two pages
    expect(await revio.findPurchasesByReference(ref('nothing'))).toEqual([]);
  });

  it('refuses amounts that are not positive whole cents before sending anything', async () => {
    for (const amount of [0, -5, 10.5, Number.NaN, 2 ** 60]) {
      await expect(revio.createPurchase({ amount, reference: ref('bad'), client: customer })).rejects.toThrow(RangeError);
    }
    await expect(revio.createPurchase({ amount: 100, reference: '', client: customer })).rejects.toThrow(RangeError);
    await expect(revio.createPurchase({ amount: 100, reference: ref('x'), client: customer, currency: 'rand' })).rejects.toThrow(RangeError);
    await expect(revio.createPayout({ amount: '12.50', reference: ref('x'), client: customer })).rejects.toThrow(RangeError);
    // Amounts from PostgreSQL bigint columns arrive as strings or bigints.
    expect((await revio.createPayout({ amount: 12n, reference: ref('x'), client: customer })).payment.amount).toBe(12);
    expect((await revio.createPurchase({ amount: '2500', reference: ref('x'), client: customer })).purchase.total).toBe(2500);
  });
});

describe('payouts', () => {
  it('creates, executes and gets a payout; finds it by reference', async () => {
    const reference = ref('wd');
    const created = await revio.createPayout({ amount: 50_000, reference, client: { email: 'payee@example.com', full_name: 'Payee' } });
    expect(created).toMatchObject({
      type: 'payout',
      status: 'initialized',
      reference,
      payment: { amount: 50_000, currency: 'ZAR', is_outgoing: true, payment_type: 'payout', paid_on: null },
    });
    expect(created.execution_url).toBe(`${sandbox.url}/po/${created.id}/bank/`);

    const executed = await revio.executePayout(created, { accountNumber: '62123456789', accountInstitution: 'FNB', branchCode: '250655', accountType: 'cheque' });
    expect(executed.status).toBe('pending');
    expect(JSON.stringify(executed)).not.toContain('62123456789');

    const again = await failure(revio.executePayout(created, { accountNumber: '62123456789', accountInstitution: 'FNB' }));
    expect(again).toMatchObject({ status: 400, code: 'payout_not_executable', retryable: false });

    sandbox.succeedPayout(created.id);
    const done = await revio.getPayout(created.id);
    expect(done.status).toBe('success');
    expect(done.payment.paid_on).toBeTypeOf('number');
    expect((await revio.findPayoutsByReference(reference)).map((p) => p.id)).toEqual([created.id]);
  });

  it('never sends the API key to an execution_url on another origin', async () => {
    const error = await failure(revio.executePayout({ execution_url: 'https://evil.example/po/1/bank/' }, { accountNumber: '123456', accountInstitution: 'X' }));
    expect(error).toMatchObject({ kind: 'refused', retryable: false });
  });
});

describe('public key and webhook registration', () => {
  it('gets the company public key as PEM', async () => {
    expect(await revio.getPublicKey()).toBe(sandbox.publicKeyPem);
  });

  it('creates, lists (all pages) and deletes webhooks', async () => {
    const made: Webhook[] = [];
    for (let i = 0; i < 3; i++) {
      made.push(await revio.createWebhook({ title: `hook ${i}`, callback: `http://127.0.0.1:9/hook/${i}`, events: ['purchase.paid', 'payout.success'] }));
    }
    const all = await revio.createWebhook({ title: 'all', callback: 'http://127.0.0.1:9/all', allEvents: true });
    expect(made[0]).toMatchObject({ all_events: false, events: ['purchase.paid', 'payout.success'], public_key: sandbox.publicKeyPem });
    expect(all.all_events).toBe(true);
    const listed = await revio.listWebhooks();
    expect(listed.map((w) => w.id)).toEqual(expect.arrayContaining([...made.map((w) => w.id), all.id]));
    for (const hook of [...made, all]) await revio.deleteWebhook(hook.id);
    const after = await revio.listWebhooks();
    expect(after.filter((w) => [...made, all].some((m) => m.id === w.id))).toEqual([]);
    expect(await failure(revio.deleteWebhook(all.id))).toMatchObject({ status: 404, code: 'not_found', retryable: false });
  });

  it('turns an unknown event name into a final 400 naming the field', async () => {
    const error = await failure(revio.createWebhook({ title: 'x', callback: 'http://127.0.0.1:9/', events: ['purchase.refunded'] }));
    expect(error).toMatchObject({ kind: 'client', status: 400, code: 'invalid_choice', field: 'events.0' });
  });
});

describe('error classification', () => {
  it('4xx are final and keep Revio\'s code and message', async () => {
    const notFound = await failure(revio.getPurchase('00000000-0000-0000-0000-000000000000'));
    expect(notFound).toMatchObject({ kind: 'client', status: 404, code: 'not_found', revioMessage: 'No such object', retryable: false });
    expect(isRetryable(notFound)).toBe(false);

    const badBrand = await failure(createRevioClient({ baseUrl: sandbox.apiUrl, apiKey: sandbox.apiKey, brandId: 'another-brand' }).createPurchase({ amount: 100, reference: ref('x'), client: customer }));
    expect(badBrand).toMatchObject({ status: 400, code: 'invalid', field: 'brand_id', retryable: false });

    const badEmail = await failure(revio.createPayout({ amount: 100, reference: ref('x'), client: { email: 'not an email' } }));
    expect(badEmail).toMatchObject({ status: 400, field: 'client.email', retryable: false });
  });

  it('401 without the right key is final, and the key never shows', async () => {
    const wrongKey = 'sk_wrong_key_that_must_not_leak_12345';
    const stranger = createRevioClient({ baseUrl: sandbox.apiUrl, apiKey: wrongKey, brandId: sandbox.brandId });
    const error = await failure(stranger.getPublicKey());
    expect(error).toMatchObject({ kind: 'client', status: 401, code: 'unauthorized', retryable: false });
    expect(JSON.stringify(error) + error.message + error.stack).not.toContain(wrongKey);
    const raw = await fetch(`${sandbox.apiUrl}purchases/`, { method: 'POST', body: '{}' });
    expect(raw.status).toBe(401);
  });

  it('5xx is retryable with an unknown outcome', async () => {
    sandbox.faults.set({ endpoints: { getPublicKey: { failNext: 1, errorStatus: 502 } } });
    const error = await failure(revio.getPublicKey());
    expect(error).toMatchObject({ kind: 'server', status: 502, code: 'bad_gateway', retryable: true, outcomeUnknown: true });
    expect(await revio.getPublicKey()).toBe(sandbox.publicKeyPem); // the fault was for one call only
  });

  it('429 is retryable and honours Retry-After', async () => {
    sandbox.faults.set({ endpoints: { '*': { failNext: 1, errorStatus: 429, retryAfterSeconds: 7 } } });
    const error = await failure(revio.listWebhooks());
    expect(error).toMatchObject({ kind: 'rate_limited', status: 429, code: 'rate_limited', retryable: true, outcomeUnknown: false, retryAfterMs: 7_000 });
    sandbox.faults.set({ endpoints: { getPayout: { failNext: 1, errorStatus: 503, retryAfterSeconds: 2 } } });
    const unavailable = await failure(revio.getPayout('00000000-0000-0000-0000-000000000000'));
    expect(unavailable).toMatchObject({ kind: 'server', status: 503, retryAfterMs: 2_000, retryable: true });
  });

  it('a hang is a retryable timeout after the per-call timeout', async () => {
    sandbox.faults.set({ endpoints: { getPublicKey: { hangNext: 1 } } });
    const started = performance.now();
    const error = await failure(revio.getPublicKey({ timeoutMs: 150 }));
    const took = performance.now() - started;
    expect(error).toMatchObject({ kind: 'timeout', retryable: true, outcomeUnknown: true });
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1_500);
  });

  it('added latency beyond the timeout is a timeout too; within it, a success', async () => {
    sandbox.faults.set({ endpoints: { getPublicKey: { latencyMs: 120 } } });
    expect((await failure(revio.getPublicKey({ timeoutMs: 50 }))).kind).toBe('timeout');
    expect(await revio.getPublicKey({ timeoutMs: 1_000 })).toBe(sandbox.publicKeyPem);
    sandbox.faults.reset();
  });

  it('a refused connection is a retryable network error that surely was not applied', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const offline = createRevioClient({ baseUrl: `http://127.0.0.1:${port}/api/v1/`, apiKey: sandbox.apiKey, brandId: sandbox.brandId });
    const error = await failure(offline.createPurchase({ amount: 100, reference: ref('x'), client: customer }));
    expect(error).toMatchObject({ kind: 'network', retryable: true, outcomeUnknown: false });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('a 500 after the payout was made is ambiguous: the lookup by reference finds the one payout', async () => {
    const reference = ref('wd-ambiguous');
    sandbox.faults.set({ endpoints: { createPayout: { failNext: 1, afterEffect: true } } });
    const error = await failure(revio.createPayout({ amount: 1_000, reference, client: customer }));
    expect(error).toMatchObject({ kind: 'server', outcomeUnknown: true });
    const found = await revio.findPayoutsByReference(reference);
    expect(found).toHaveLength(1); // so the caller must not create a second one

    sandbox.faults.set({ endpoints: { createPayout: { hangNext: 1, afterEffect: true } } });
    const other = ref('wd-hang');
    expect((await failure(revio.createPayout({ amount: 1_000, reference: other, client: customer }, { timeoutMs: 100 }))).kind).toBe('timeout');
    expect(await revio.findPayoutsByReference(other)).toHaveLength(1);
    sandbox.faults.reset();
  });

  it('logs operation, status and timing, never the key', () => {
    expect(logLines.length).toBeGreaterThan(10);
    expect(JSON.stringify(logLines)).not.toContain(sandbox.apiKey);
    expect(logLines).toContainEqual(expect.objectContaining({ operation: 'getPurchase', status: 404 }));
  });
});

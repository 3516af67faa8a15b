// The sandbox itself over HTTP: auth, paths, persistence across a restart,
// the checkout form, payouts, the REST shortcuts and the fault knobs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRevioSignature, type Purchase } from '../src/revio/index.ts';
import { REJECTED_ACCOUNT, type RevioSandbox } from '../src/revio-sandbox/index.ts';
import { readStateFile } from '../src/revio-sandbox/store.ts';
import { clientFor, events, startReceiver, startTestSandbox, testPrivateKeyPem, type Receiver } from './helpers/revio.ts';

let sandbox: RevioSandbox;
let receiver: Receiver;
const dir = mkdtempSync(join(tmpdir(), 'revio-sandbox-test-'));

beforeAll(async () => {
  receiver = await startReceiver();
  sandbox = await startTestSandbox({ webhooks: [{ callback: `${receiver.url}/hook` }] });
});
afterAll(async () => {
  await sandbox.close();
  await receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${sandbox.apiKey}`, 'content-type': 'application/json' });
const api = (path: string, init: RequestInit = {}) => fetch(`${sandbox.apiUrl}${path}`, { ...init, headers: { ...auth(), ...init.headers } });
const purchaseBody = (reference: string, extra: object = {}) => ({
  brand_id: sandbox.brandId,
  client: { email: 'shopper@example.com' },
  purchase: { products: [{ name: 'Deposit', price: 2_500 }] },
  reference,
  ...extra,
});

describe('API conventions', () => {
  it('answers 401 without the configured key, on every path', async () => {
    for (const path of ['purchases/', 'payouts/', 'public_key/', 'webhooks/', 'nowhere/']) {
      const response = await fetch(`${sandbox.apiUrl}${path}`);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ code: 'unauthorized' });
    }
    expect((await fetch(`${sandbox.apiUrl}public_key/`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${sandbox.url}/po/x/bank/`, { method: 'POST' })).status).toBe(401);
  });

  it('requires trailing slashes, returns JSON strings for the public key, and rejects bad JSON', async () => {
    expect((await api('public_key')).status).toBe(404);
    const key = await api('public_key/');
    expect(await key.json()).toBe(sandbox.publicKeyPem);
    const bad = await api('purchases/', { method: 'POST', body: '{not json' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'invalid_request' });
  });

  it('validates purchases field by field and computes totals from products', async () => {
    const missing = await api('purchases/', { method: 'POST', body: JSON.stringify({ brand_id: sandbox.brandId, client: { email: 'a@b.co' }, purchase: { products: [] } }) });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ purchase: { products: [{ message: 'Ensure this field has at least 1 elements.', code: 'min_length' }] } });
    const response = await api('purchases/', {
      method: 'POST',
      body: JSON.stringify(purchaseBody('totals', { purchase: { currency: 'ZAR', products: [{ name: 'A', price: 1_000, quantity: 2, discount: 500 }, { name: 'B', price: 999 }] } })),
    });
    expect(response.status).toBe(201);
    expect(((await response.json()) as Purchase).purchase.total).toBe(2 * 1_000 - 500 + 999);
  });
});

describe('checkout page (form posts, as a browser sends them)', () => {
  const form = (fields: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' as const });
  const card = { number: '4444 3333 2222 1111', name: 'Ann Person', expiry: '12/40', cvc: '123' };

  it('marks the purchase viewed, refuses a past expiry without changing state, declines a wrong CVC, then pays', async () => {
    const purchase = await clientFor(sandbox).createPurchase({ amount: 4_200, reference: 'checkout-1', client: { email: 'ann@example.com' }, successRedirect: 'https://shop.example/ok' });
    const page = await fetch(purchase.checkout_url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('R 42.00');
    expect(html).toContain('>Pay</button>');
    expect(html).toContain('>Fail</button>');
    expect(sandbox.purchase(purchase.id)!.status).toBe('viewed');

    const expired = await fetch(`${sandbox.url}/p/${purchase.id}/pay/`, form({ ...card, expiry: '01/20', outcome: 'pay' }));
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain('expiry date is not valid');
    expect(sandbox.purchase(purchase.id)!.status).toBe('viewed');

    const wrongCvc = await fetch(`${sandbox.url}/p/${purchase.id}/pay/`, form({ ...card, cvc: '999', outcome: 'pay' }));
    expect(wrongCvc.status).toBe(402);
    expect(sandbox.purchase(purchase.id)).toMatchObject({ status: 'error', transaction_data: { attempts: [{ error: { code: 'authorization_failed' } }] } });

    const failButton = await fetch(`${sandbox.url}/p/${purchase.id}/pay/`, form({ ...card, outcome: 'fail' }));
    expect(failButton.status).toBe(402);

    const paid = await fetch(`${sandbox.url}/p/${purchase.id}/pay/`, form({ ...card, outcome: 'pay' }));
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe('https://shop.example/ok');
    expect(sandbox.purchase(purchase.id)!.status_history.map((h) => h.status)).toEqual(['created', 'viewed', 'error', 'error', 'paid']);
    expect(await (await fetch(purchase.checkout_url)).text()).toContain('Payment successful');

    await receiver.waitFor((r) => r.some((d) => d.body.id === purchase.id && d.body.event_type === 'purchase.paid'));
    const mine = receiver.received.filter((d) => d.body.id === purchase.id);
    expect(events(mine)).toEqual(['purchase.created', 'purchase.viewed', 'purchase.payment_failure', 'purchase.payment_failure', 'purchase.paid']);
    expect(mine.every((d) => verifyRevioSignature(d.raw, d.signature, sandbox.publicKeyPem))).toBe(true);
  });

  it('shows a cancelled purchase as not payable and 404s unknown ones', async () => {
    const revio = clientFor(sandbox);
    const purchase = await revio.createPurchase({ amount: 100, reference: 'checkout-2', client: { email: 'a@example.com' } });
    await revio.cancelPurchase(purchase.id);
    const response = await fetch(`${sandbox.url}/p/${purchase.id}/pay/`, form({ ...card, outcome: 'pay' }));
    expect(await response.text()).toContain('cancelled and can no longer be paid');
    expect(sandbox.purchase(purchase.id)!.status).toBe('cancelled');
    expect((await fetch(`${sandbox.url}/p/00000000-0000-0000-0000-000000000000/`)).status).toBe(404);
  });

  it('escapes what it shows', async () => {
    const purchase = await clientFor(sandbox).createPurchase({ amount: 100, reference: '<script>alert(1)</script>', client: { email: 'x@example.com' }, productName: '<img src=x>' });
    const html = await (await fetch(purchase.checkout_url)).text();
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<img src=x>');
    expect(html).toContain('&lt;img src=x&gt;');
  });
});

describe('REST shortcuts and payouts', () => {
  it('pays and fails purchases, succeeds and fails payouts', async () => {
    const revio = clientFor(sandbox);
    const purchase = await revio.createPurchase({ amount: 300, reference: 'rest-1', client: { email: 'a@example.com' } });
    const failed = await fetch(`${sandbox.url}/_sandbox/purchases/${purchase.id}/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'card_declined', message: 'Nope' }) });
    expect(await failed.json()).toMatchObject({ status: 'error', transaction_data: { attempts: [{ error: { code: 'card_declined', message: 'Nope' } }] } });
    const paid = await fetch(`${sandbox.url}/_sandbox/purchases/${purchase.id}/pay`, { method: 'POST' });
    expect(await paid.json()).toMatchObject({ status: 'paid', payment: { amount: 300 } });
    expect((await fetch(`${sandbox.url}/_sandbox/purchases/${purchase.id}/pay`, { method: 'POST' })).status).toBe(409);

    const payout = await revio.createPayout({ amount: 900, reference: 'rest-wd', client: { email: 'a@example.com' } });
    expect((await fetch(`${sandbox.url}/_sandbox/payouts/${payout.id}/succeed`, { method: 'POST' })).status).toBe(409); // not executed yet
    await revio.executePayout(payout, { accountNumber: '1234567890', accountInstitution: 'Capitec' });
    const succeeded = await fetch(`${sandbox.url}/_sandbox/payouts/${payout.id}/succeed`, { method: 'POST' });
    expect(await succeeded.json()).toMatchObject({ status: 'success' });

    const other = await revio.createPayout({ amount: 900, reference: 'rest-wd-2', client: { email: 'a@example.com' } });
    await revio.executePayout(other, { accountNumber: '1234567890', accountInstitution: 'Capitec' });
    const failedPayout = await fetch(`${sandbox.url}/_sandbox/payouts/${other.id}/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'Account closed' }) });
    expect(await failedPayout.json()).toMatchObject({ status: 'error', transaction_data: { attempts: [{ error: { code: 'payout_failed', message: 'Account closed' } }] } });

    await receiver.waitFor((r) => r.some((d) => d.body.id === other.id && d.body.event_type === 'payout.failed'));
    expect(events(receiver.received.filter((d) => d.body.id === payout.id))).toEqual(['payout.created', 'payout.pending', 'payout.success']);
  });

  it('settles payouts by itself when configured; the reject account fails', async () => {
    const auto = await startTestSandbox({ payoutAutoCompleteMs: 20 });
    try {
      const revio = clientFor(auto);
      const good = await revio.createPayout({ amount: 100, reference: 'auto-1', client: { email: 'a@example.com' } });
      const bad = await revio.createPayout({ amount: 100, reference: 'auto-2', client: { email: 'a@example.com' } });
      await revio.executePayout(good, { accountNumber: '1234567890', accountInstitution: 'FNB' });
      await revio.executePayout(bad, { accountNumber: REJECTED_ACCOUNT, accountInstitution: 'FNB' });
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect((await revio.getPayout(good.id)).status).toBe('success');
      expect((await revio.getPayout(bad.id))).toMatchObject({ status: 'error', transaction_data: { attempts: [{ error: { code: 'account_rejected' } }] } });
    } finally {
      await auto.close();
    }
  });

  it('validates faults and reports them', async () => {
    const bad = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ endpoints: { createPurchase: { errorRate: 2 } } }) });
    expect(bad.status).toBe(400);
    const malformed = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{oops' });
    expect(malformed.status).toBe(400);
    const unknown = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ endpoints: { refund: { errorRate: 1 } } }) });
    expect(unknown.status).toBe(400);
    const good = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ endpoints: { createPurchase: { errorRate: 1, errorStatus: 500 } } }) });
    expect(await good.json()).toMatchObject({ endpoints: { createPurchase: { errorRate: 1, errorStatus: 500 } } });
    expect((await api('purchases/', { method: 'POST', body: JSON.stringify(purchaseBody('faulty')) })).status).toBe(500);
    await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'DELETE' });
    expect((await api('purchases/', { method: 'POST', body: JSON.stringify(purchaseBody('fine')) })).status).toBe(201);
  });

  it('serves a console page for people', async () => {
    const response = await fetch(`${sandbox.url}/_sandbox/`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('Revio sandbox console');
  });
});

describe('persistence', () => {
  it('fails, after a restart, a payout to the reject account that a crash left pending', async () => {
    const stateFile = join(dir, 'rejected-payout.json');
    const first = await startTestSandbox({ stateFile });
    const revio = clientFor(first);
    const payout = await revio.createPayout({ amount: 300, reference: 'crash-wd', client: { email: 'c@example.com' } });
    // Executed to a good account, so it stays pending (no auto-completion here)…
    await revio.executePayout(payout, { accountNumber: '1234567890', accountInstitution: 'FNB' });
    await first.close();
    // …then the file is made to say what a sandbox killed between executing a
    // payout to the reject account and failing it would have left behind.
    const saved = readStateFile(stateFile);
    expect(saved.payouts[payout.id].status).toBe('pending');
    saved.payoutExecutions[payout.id] = { ...saved.payoutExecutions[payout.id], accountLast4: REJECTED_ACCOUNT.slice(-4), rejected: true };
    writeFileSync(stateFile, JSON.stringify(saved));
    rmSync(`${stateFile}.journal`, { force: true });

    const second = await startTestSandbox({ stateFile, payoutAutoCompleteMs: 20 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await clientFor(second).getPayout(payout.id)).toMatchObject({ status: 'error', transaction_data: { attempts: [{ error: { code: 'account_rejected' } }] } });
    } finally {
      await second.close();
    }
  });

  it('keeps objects, webhooks, the key and pending deliveries across a restart with a file', async () => {
    const stateFile = join(dir, 'state.json');
    const hookReceiver = await startReceiver();
    hookReceiver.respond = () => 500; // nothing gets through before the restart
    const first = await startTestSandbox({ stateFile, privateKeyPem: undefined, keyBits: 2048, webhooks: [{ callback: `${hookReceiver.url}/hook` }] });
    const revio = clientFor(first);
    const purchase = await revio.createPurchase({ amount: 1_234, reference: 'persist-1', client: { email: 'p@example.com' } });
    const payout = await revio.createPayout({ amount: 777, reference: 'persist-wd', client: { email: 'p@example.com' } });
    first.payPurchase(purchase.id);
    await hookReceiver.waitFor((r) => r.length >= 2);
    const publicKey = first.publicKeyPem;
    await first.close();
    expect(publicKey).not.toBe(sandbox.publicKeyPem); // generated, not the shared test key
    const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
    expect(Object.keys(saved.purchases)).toEqual([purchase.id]);
    expect(saved.deliveries.some((d: { state: string }) => d.state === 'pending')).toBe(true);

    hookReceiver.respond = () => 200;
    const second = await startTestSandbox({ stateFile, privateKeyPem: undefined });
    try {
      expect(second.publicKeyPem).toBe(publicKey);
      const again = clientFor(second);
      const reloaded = await again.getPurchase(purchase.id);
      expect(reloaded).toMatchObject({ status: 'paid', reference: 'persist-1', payment: { amount: 1_234 } });
      expect(reloaded.checkout_url).toBe(`${second.url}/p/${purchase.id}/`);
      expect((await again.findPayoutsByReference('persist-wd')).map((p) => p.id)).toEqual([payout.id]);
      expect((await again.listWebhooks()).map((w) => w.callback)).toEqual([`${hookReceiver.url}/hook`]); // not registered twice
      // The deliveries that were still failing resume, in order, signed with the kept key.
      await hookReceiver.waitFor((r) => r.some((d) => d.answered === 200 && d.body.event_type === 'purchase.paid'));
      await second.whenDeliveriesIdle();
      const delivered = hookReceiver.received.filter((d) => d.answered === 200);
      expect(events(delivered.filter((d) => d.body.id === purchase.id))).toEqual(['purchase.created', 'purchase.paid']);
      expect(delivered.every((d) => verifyRevioSignature(d.raw, d.signature, publicKey))).toBe(true);
      const newer = await again.createPurchase({ amount: 5, reference: 'persist-2', client: { email: 'p@example.com' } });
      expect(newer.reference_generated).toBe('#100002');
    } finally {
      await second.close();
      await hookReceiver.close();
    }
    expect(testPrivateKeyPem()).toBeTruthy();
  });
});

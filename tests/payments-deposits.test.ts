// Deposits end to end, over real HTTP against a database of this file's own:
// createDeposit → the worker creates the Revio purchase → the person pays on
// the sandbox's checkout page (in headless Chromium, and through the REST
// shortcut) → a signed webhook credits the wallet exactly once. Then the
// webhook route under attack: bad, missing and foreign signatures, 50
// concurrent copies of one event, out-of-order events, an amount mismatch,
// unknown purchases, malformed and oversized bodies.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  balance, createDeposit, depositRow, eventually, paidEvent, postWebhook, signUp, startPaymentsStack,
  type PaymentsStack, type Person,
} from './helpers/payments.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH.`);

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('deposits');
});
afterAll(() => stack?.close());

/** A deposit whose purchase exists at Revio (awaiting payment). */
async function awaitingDeposit(person: Person, amount = 10_000) {
  const created = await createDeposit(stack, person, amount);
  expect(created.errors).toBeUndefined();
  const id: string = created.data.createDeposit.result.rowId;
  const row = await eventually(async () => {
    const r = await depositRow(stack, id);
    return r.status === 'awaiting_payment' ? r : undefined;
  }, 10_000, 'awaiting payment');
  return { id, purchaseId: row.revio_purchase_id as string };
}

const walletBalance = async (person: Person) => {
  const r = await stack.graphql(`{ allWallets { nodes { currency balance availableBalance } } }`, {}, person.token);
  return r.data.allWallets.nodes.find((w: { currency: string }) => w.currency === 'ZAR');
};

describe('a person deposits', () => {
  it('through the checkout page in a real browser: open checkoutUrl, press Pay, see the balance', async () => {
    const person = await signUp(stack, 'dep-browser');
    const created = await createDeposit(stack, person, 25_000, 'browser-1');
    expect(created.data.createDeposit.result).toMatchObject({ status: 'pending', amount: '25000', currency: 'ZAR', checkoutUrl: null });
    const id = created.data.createDeposit.result.rowId;
    const polled = await eventually(async () => {
      const r = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { status checkoutUrl } }`, { id }, person.token);
      return r.data?.depositByRowId?.checkoutUrl ? r.data.depositByRowId : undefined;
    }, 10_000, 'checkout URL');
    expect(polled.status).toBe('awaiting_payment');
    expect(polled.checkoutUrl.startsWith(`${stack.sandbox.url}/p/`)).toBe(true);

    const profile = mkdtempSync(join(tmpdir(), 'pgwallet-chromium-'));
    let browser: BrowserContext | undefined;
    try {
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await browser.newPage();
      await page.goto(polled.checkoutUrl);
      expect(await page.getByTestId('amount').textContent()).toBe('R 250.00');
      await page.getByRole('button', { name: 'Pay', exact: true }).click(); // the form is prefilled with the success card
      await expect.poll(() => page.getByTestId('status').textContent(), { timeout: 5_000 }).toContain('Payment successful');
    } finally {
      await browser?.close();
      rmSync(profile, { recursive: true, force: true });
    }

    const paid = await eventually(async () => {
      const r = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { status paidAt } }`, { id }, person.token);
      return r.data.depositByRowId.status === 'paid' ? r.data.depositByRowId : undefined;
    }, 10_000, 'deposit paid');
    expect(paid.paidAt).toBeTruthy();
    expect(await walletBalance(person)).toMatchObject({ balance: '25000', availableBalance: '25000' });
  });

  it('a failed attempt shows why and leaves the deposit payable; a cancelled purchase cancels it', async () => {
    const person = await signUp(stack, 'dep-fail');
    const first = await awaitingDeposit(person);
    stack.sandbox.failPurchase(first.purchaseId);
    await eventually(async () => (await depositRow(stack, first.id)).failure_reason, 5_000, 'failure reason');
    expect(await depositRow(stack, first.id)).toMatchObject({ status: 'awaiting_payment', failure_reason: 'Authorisation failed: the CVC does not match.' });
    stack.sandbox.payPurchase(first.purchaseId);
    await eventually(async () => (await depositRow(stack, first.id)).status === 'paid', 5_000, 'paid after retry');
    expect((await depositRow(stack, first.id)).failure_reason).toBeNull();

    const second = await awaitingDeposit(person);
    await stack.revio.cancelPurchase(second.purchaseId);
    await eventually(async () => (await depositRow(stack, second.id)).status === 'cancelled', 5_000, 'cancelled');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('lists only the caller\'s deposits and refuses bad requests with clear codes', async () => {
    const [ann, bob] = await Promise.all([signUp(stack, 'dep-ann'), signUp(stack, 'dep-bob')]);
    const a = await createDeposit(stack, ann, 5_000, 'same-key');
    const again = await createDeposit(stack, ann, 5_000, 'same-key');
    expect(again.data.createDeposit.result.rowId).toBe(a.data.createDeposit.result.rowId);
    expect((await createDeposit(stack, ann, 6_000, 'same-key')).errors?.[0].extensions?.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await createDeposit(stack, bob, 5_000, 'same-key')).data.createDeposit.result.rowId).not.toBe(a.data.createDeposit.result.rowId);

    const tooSmall = await createDeposit(stack, ann, 999);
    expect(tooSmall.errors?.[0]).toMatchObject({ message: 'A deposit must be between ZAR 10.00 and ZAR 50000.00', extensions: { code: 'DEPOSIT_AMOUNT_OUT_OF_RANGE' } });
    expect((await createDeposit(stack, ann, 5_000_001)).errors?.[0].extensions?.code).toBe('DEPOSIT_AMOUNT_OUT_OF_RANGE');
    expect((await createDeposit(stack, ann, '12.5')).errors?.[0].extensions?.code).toBe('AMOUNT_INVALID');
    expect((await createDeposit(stack, { ...ann, walletId: bob.walletId }, 5_000)).errors?.[0].extensions?.code).toBe('WALLET_NOT_FOUND');
    expect((await createDeposit(stack, { ...ann, token: '' }, 5_000)).errors?.[0].extensions?.code).toBe('PERMISSION_DENIED');

    const listed = await stack.graphql(`{ allDeposits { nodes { rowId } } }`, {}, ann.token);
    expect(listed.data.allDeposits.nodes).toEqual([{ rowId: a.data.createDeposit.result.rowId }]);
    const peek = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { rowId } }`, { id: a.data.createDeposit.result.rowId }, bob.token);
    expect(peek.data.depositByRowId).toBeNull();
  });
});

describe('POST /webhooks/revio', () => {
  it('refuses missing, malformed and foreign signatures with 401, records them, and applies nothing', async () => {
    const person = await signUp(stack, 'wh-sig');
    const { id, purchaseId } = await awaitingDeposit(person);
    const event = await paidEvent(stack, purchaseId);
    for (const signing of ['none', 'garbage', 'other-key'] as const) {
      const response = await postWebhook(stack, event, signing);
      expect(response.status, signing).toBe(401);
      expect(response.body.errors[0].extensions.code).toBe('WEBHOOK_SIGNATURE_INVALID');
    }
    expect(await depositRow(stack, id)).toMatchObject({ status: 'awaiting_payment', credit_entry_id: null });
    // Recorded with the raw body, not even parsed (no object id, no event type).
    const { rows: logged } = await stack.owner.query(
      `select outcome, object_id, event_type, headers ? 'x-signature' as had_signature from audit.revio_webhook_log
        where not signature_ok and strpos(body, $1) > 0 order by id`, [purchaseId]);
    expect(logged).toEqual([
      { outcome: 'bad_signature', object_id: null, event_type: null, had_signature: false },
      { outcome: 'bad_signature', object_id: null, event_type: null, had_signature: true },
      { outcome: 'bad_signature', object_id: null, event_type: null, had_signature: true },
    ]);

    // The same bytes signed by Revio's key are applied.
    expect((await postWebhook(stack, event)).body).toEqual({ received: true, outcome: 'applied' });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('credits once when one paid event arrives 50 times at once', async () => {
    const person = await signUp(stack, 'wh-50');
    const { id, purchaseId } = await awaitingDeposit(person, 12_345);
    const event = await paidEvent(stack, purchaseId);
    const responses = await Promise.all(Array.from({ length: 50 }, () => postWebhook(stack, event)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    const outcomes = responses.map((r) => r.body.outcome).sort();
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(49);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 12_345n, held: 0n });
    const { rows } = await stack.owner.query(`select count(*)::int as n from ledger.entries where metadata->>'deposit_id' = $1`, [id]);
    expect(rows[0].n).toBe(1);
  });

  it('out-of-order and replayed events change nothing already decided', async () => {
    const person = await signUp(stack, 'wh-order');
    const { id, purchaseId } = await awaitingDeposit(person);
    const purchase = await stack.revio.getPurchase(purchaseId);
    const paid = await paidEvent(stack, purchaseId, { updatedOn: purchase.updated_on + 10 });
    const viewedLater = { ...purchase, status: 'viewed', updated_on: purchase.updated_on + 5, event_type: 'purchase.viewed' };
    const cancelledLate = { ...purchase, status: 'cancelled', updated_on: purchase.updated_on + 20, event_type: 'purchase.cancelled' };
    expect((await postWebhook(stack, paid)).body.outcome).toBe('applied');
    expect((await postWebhook(stack, viewedLater)).body.outcome).toBe('ignored'); // older news
    expect((await postWebhook(stack, cancelledLate)).body.outcome).toBe('ignored'); // cannot undo a payment
    expect((await postWebhook(stack, paid)).body.outcome).toBe('duplicate');
    expect(await depositRow(stack, id)).toMatchObject({ status: 'paid' });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('refuses to credit when the amount or currency differ, and flags the deposit', async () => {
    const person = await signUp(stack, 'wh-mismatch');
    const { id, purchaseId } = await awaitingDeposit(person, 10_000);
    const response = await postWebhook(stack, await paidEvent(stack, purchaseId, { amount: 1_000_000 }));
    expect(response.body.outcome).toBe('review');
    const currency = await postWebhook(stack, await paidEvent(stack, purchaseId, { currency: 'USD', updatedOn: Math.floor(Date.now() / 1000) + 100 }));
    expect(currency.body.outcome).toBe('review');
    expect(await depositRow(stack, id)).toMatchObject({ status: 'awaiting_payment', needs_attention: true, credit_entry_id: null });
    expect((await depositRow(stack, id)).attention_reason).toMatch(/USD 100\.00 paid but the deposit is for ZAR 100\.00/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });
    const { rows } = await stack.owner.query(`select kind, attention_reason from audit.payments_needing_attention where id = $1`, [id]);
    expect(rows).toHaveLength(1);
  });

  it('records events for unknown objects as unmatched, and malformed signed bodies as invalid, with a 200', async () => {
    const person = await signUp(stack, 'wh-unknown');
    const { purchaseId } = await awaitingDeposit(person);
    const stranger = { ...(await paidEvent(stack, purchaseId)), id: '00000000-0000-4000-8000-000000000001', reference: 'someone-else' };
    expect(await postWebhook(stack, stranger)).toEqual({ status: 200, body: { received: true, outcome: 'unmatched' } });
    expect((await postWebhook(stack, stranger)).body.outcome).toBe('duplicate');
    expect((await postWebhook(stack, { ...stranger, type: 'payment', event_type: 'payment.refunded' })).body.outcome).toBe('unmatched');
    expect((await postWebhook(stack, '{"not": json')).body.outcome).toBe('invalid');
    expect((await postWebhook(stack, '[1, 2, 3]')).body.outcome).toBe('invalid');
    const { rows } = await stack.owner.query(`select object_type, event_type from audit.unmatched_revio_events where object_id = $1 order by id`, [stranger.id]);
    expect(rows).toEqual([{ object_type: 'purchase', event_type: 'purchase.paid' }, { object_type: 'payment', event_type: 'payment.refunded' }]);
  });

  it('answers 413 for a body over the limit before reading it', async () => {
    const big = JSON.stringify({ padding: 'x'.repeat(stack.payments.webhookBodyLimitBytes) });
    const response = await postWebhook(stack, big);
    expect(response.status).toBe(413);
    expect(response.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

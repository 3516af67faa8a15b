// Funds availability and provider fees, end to end with the worker and the
// sandbox: a fresh deposit's credit is held until it clears (here after 2 s;
// DEPOSIT_CLEARING_SECONDS, 72 h in production) or Revio reports it settled;
// a refund takes its share out of the clearing hold; Revio's fee (reported,
// or the configured schedule when it is not) is booked to provider_fees; the
// daily reconciliation compares net settlement.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ledgerHealth, HEALTHY } from './helpers/ledger.ts';
import { becomeMerchant, createProduct, merchantBalance } from './helpers/commerce.ts';
import {
  addBankAccount, balance, codeOf, createDeposit, depositRow, eventually, fundByDeposit, paidEvent, postWebhook, refundDeposit,
  refundRow, requestWithdrawal, runJob, signUp, startPaymentsStack, type PaymentsStack,
} from './helpers/payments.ts';

const CLEARING_SECONDS = 2;
let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('clearing', {
    payments: { depositClearingSeconds: CLEARING_SECONDS, revioFeeBps: 100, revioFeeFixedCents: 50 },
    sandbox: { feeBps: 250 }, // Revio reports a 2.5 % fee on every paid purchase
  });
});
afterEach(() => stack.sandbox.faults.reset());
afterAll(() => stack?.close());

const WALLET = `query($id: UUID!) { walletByRowId(rowId: $id) { balance availableBalance heldBalance } }`;

async function providerFees(): Promise<bigint> {
  const { rows } = await stack.owner.query(`select coalesce(sum(balance), 0)::text as b from ledger.accounts where kind = 'provider_fees' and currency = 'ZAR'`);
  return BigInt(rows[0].b);
}

describe('clearing', () => {
  it('a fresh deposit cannot be withdrawn or transferred before it clears; it can after', async () => {
    const person = await signUp(stack, 'clr-fresh');
    const friend = await signUp(stack, 'clr-friend');
    const bank = await addBankAccount(stack, person);
    const depositId = await fundByDeposit(stack, person, 10_000);

    const row = await depositRow(stack, depositId);
    expect(row.clearing_hold_id).toBeTruthy();
    expect(row.cleared_at).toBeNull();
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 10_000n });
    expect((await stack.graphql(WALLET, { id: person.walletId }, person.token)).data.walletByRowId)
      .toEqual({ balance: '10000', availableBalance: '0', heldBalance: '10000' });
    const seen = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { status clearsAt clearedAt } }`, { id: depositId }, person.token);
    expect(seen.data.depositByRowId).toMatchObject({ status: 'paid', clearedAt: null });
    expect(new Date(seen.data.depositByRowId.clearsAt).getTime()).toBeGreaterThan(Date.now() - 1_000);

    expect(codeOf(await requestWithdrawal(stack, person, bank, 5_000))).toBe('INSUFFICIENT_FUNDS');
    const transfer = (key: string) => stack.graphql(`mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`,
      { i: { fromWalletId: person.walletId, toEmail: friend.email, amount: '1000', idempotencyKey: key } }, person.token);
    expect(codeOf(await transfer('clr-1'))).toBe('INSUFFICIENT_FUNDS');

    // payments.release_cleared, queued for clears_at, releases it.
    await eventually(async () => (await depositRow(stack, depositId)).cleared_at !== null, 15_000, 'deposit cleared');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
    expect((await requestWithdrawal(stack, person, bank, 5_000)).errors).toBeUndefined();
    expect((await transfer('clr-2')).errors).toBeUndefined();
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
  });

  it('Revio reporting the purchase settled releases it early', async () => {
    const person = await signUp(stack, 'clr-settled');
    const depositId = await fundByDeposit(stack, person, 8_000);
    // As under a long clearing rule: clears_at far ahead, so only `settled` can release it now.
    await stack.owner.query(`update app_public.deposits set clears_at = now() + interval '3 days' where id = $1`, [depositId]);
    const paid = await paidEvent(stack, (await depositRow(stack, depositId)).revio_purchase_id);
    const settled = { ...paid, status: 'settled', updated_on: paid.updated_on + 2, event_type: 'purchase.settled' };
    expect((await postWebhook(stack, settled)).body.outcome).toBe('applied');
    expect((await depositRow(stack, depositId)).cleared_at).not.toBeNull();
    expect(await balance(stack, person.walletId)).toEqual({ balance: 8_000n, held: 0n });
  });

  it('a refund while the deposit clears takes its share out of the clearing hold', async () => {
    const person = await signUp(stack, 'clr-refund');
    const depositId = await fundByDeposit(stack, person, 10_000);
    await stack.owner.query(`update app_public.deposits set clears_at = now() + interval '1 hour' where id = $1`, [depositId]);
    const refund = await refundDeposit(stack, person, depositId, 4_000);
    expect(refund.errors).toBeUndefined();
    await eventually(async () => (await refundRow(stack, refund.data.refundDeposit.result.rowId)).status === 'succeeded', 10_000, 'refunded');
    // 6 000 left, still clearing; nothing of it available yet.
    expect(await balance(stack, person.walletId)).toEqual({ balance: 6_000n, held: 6_000n });
    await stack.owner.query(`update app_public.deposits set clears_at = now() where id = $1`, [depositId]);
    await runJob(stack, 'payments.release_cleared');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 6_000n, held: 0n });
  });
});

describe('provider fees and net settlement', () => {
  it('books the fee Revio reports to provider_fees, so clearing holds what Revio settles', async () => {
    const person = await signUp(stack, 'fee-reported');
    const feesBefore = await providerFees();
    const depositId = await fundByDeposit(stack, person, 20_000);
    expect(await depositRow(stack, depositId)).toMatchObject({ fee_amount: '500' }); // 2.5 % of 200.00
    expect(await providerFees()).toBe(feesBefore - 500n);
    const { rows } = await stack.owner.query(
      `select sum(p.amount)::text as clearing from ledger.postings p join ledger.accounts a on a.id = p.account_id
        where a.kind = 'revio_clearing' and p.entry_id in (select credit_entry_id from app_public.deposits where id = $1
                                                            union all select fee_entry_id from app_public.deposits where id = $1)`,
      [depositId],
    );
    expect(rows[0].clearing).toBe('-19500'); // Revio holds amount − fee for us
    expect(await balance(stack, person.walletId)).toMatchObject({ balance: 20_000n }); // the person gets what they paid
  });

  it('uses the configured schedule when Revio reports no fee, and the daily check reports the difference in net settlement', async () => {
    const person = await signUp(stack, 'fee-schedule');
    stack.sandbox.faults.set({ webhooks: { outage: { startsInMs: 0, mode: 'drop' } } });
    const depositId = (await createDeposit(stack, person, 10_000)).data.createDeposit.result.rowId;
    const purchaseId = await eventually(async () => (await depositRow(stack, depositId)).revio_purchase_id, 10_000, 'purchase');
    stack.sandbox.payPurchase(purchaseId); // Revio keeps 250
    const event = await paidEvent(stack, purchaseId);
    delete (event.payment as { fee_amount?: number }).fee_amount; // a delivery that does not say
    expect((await postWebhook(stack, event)).body.outcome).toBe('applied');
    expect(await depositRow(stack, depositId)).toMatchObject({ status: 'paid', fee_amount: '150' }); // 1 % + 0.50

    await runJob(stack, 'revio.reconcile_daily');
    const { rows } = await stack.owner.query(`select kind, deposit_id, ledger_amount::int, revio_amount::int, detail from audit.revio_discrepancies order by id`);
    expect(rows.map((r) => r.kind)).toEqual(['fee_differs', 'clearing_total']);
    expect(rows[0]).toMatchObject({ deposit_id: depositId, ledger_amount: 9_850, revio_amount: 9_750 });
    expect(rows[0].detail).toMatch(/fee ZAR 2.50.*fee ZAR 1.50/);
    expect(rows[1].ledger_amount - rows[1].revio_amount).toBe(100);
  });
});

describe('clearing and card orders', () => {
  it('a card order is paid while deposits clear: the credit is spent on the order, nothing is left to hold', async () => {
    const shop = await signUp(stack, 'clearing-shop');
    await becomeMerchant(stack, shop, 'Clearing shop');
    const lamp = await createProduct(stack, shop, { price: 25_000, stock: 3 });
    const ivy = await signUp(stack, 'clearing-ivy');
    const r = await stack.graphql(
      `mutation($i: PurchaseByCardInput!) { purchaseByCard(input: $i) { result { rowId depositId status } } }`,
      { i: { items: [{ productId: lamp.rowId, quantity: 1 }], idempotencyKey: 'clearing-card-1' } },
      ivy.token,
    );
    const order = r.data.purchaseByCard.result;
    const purchaseId = await eventually(async () => (await depositRow(stack, order.depositId))?.revio_purchase_id ?? undefined, 10_000, 'Revio purchase');
    stack.sandbox.payPurchase(purchaseId);
    await eventually(async () => (await stack.owner.query(`select status from app_public.orders where id = $1`, [order.rowId])).rows[0].status === 'paid', 10_000, 'order paid');
    expect(await balance(stack, ivy.walletId)).toEqual({ balance: 0n, held: 0n });
    expect(await merchantBalance(stack, shop.userId)).toBeGreaterThan(0n);
    const { rows } = await stack.owner.query(`select clearing_hold_id, cleared_at from app_public.deposits where id = $1`, [order.depositId]);
    expect(rows[0]).toMatchObject({ clearing_hold_id: null });
    expect(rows[0].cleared_at).toBeTruthy();
  });
});

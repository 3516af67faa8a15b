// The money lifecycle after a deposit, end to end over real HTTP, the worker,
// the Revio sandbox and the signed webhook route: refunds (instant, pending,
// failed, a lost answer retried without refunding twice), chargebacks and
// Revio's own refunds (a debit, a visible receivable, withdrawals blocked
// until an admin reviews), cancellations of deposits and withdrawals, and the
// review paths: each asserts the flag, the ledger movement (or its absence)
// and balance/held.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ledgerHealth, HEALTHY } from './helpers/ledger.ts';
import {
  addBankAccount, balance, codeOf, createDeposit, deliveriesFor, depositRow, eventually, fundByDeposit, paidEvent, postWebhook,
  refundDeposit, refundRow, requestWithdrawal, runJob, signUp, signUpAdmin, startPaymentsStack, withdrawalRow,
  type PaymentsStack, type Person,
} from './helpers/payments.ts';

let stack: PaymentsStack;
let admin: Person;
beforeAll(async () => {
  stack = await startPaymentsStack('lifecycle');
  admin = await signUpAdmin(stack, 'lc-admin');
});
afterEach(() => {
  stack.sandbox.faults.reset();
  stack.sandbox.setRefundMode('instant');
});
afterAll(() => stack?.close());

const purchaseOf = async (depositId: string) => (await depositRow(stack, depositId)).revio_purchase_id as string;

async function systemBalance(kind: string): Promise<bigint> {
  const { rows } = await stack.owner.query(`select coalesce(sum(balance), 0)::text as b from ledger.accounts where kind = $1 and currency = 'ZAR'`, [kind]);
  return BigInt(rows[0].b);
}

async function entriesOf(kind: string, depositId: string) {
  const { rows } = await stack.owner.query(
    `select e.id, (select sum(p.amount) from ledger.postings p where p.entry_id = e.id and p.amount > 0)::text as amount
       from ledger.entries e where e.kind = $1 and e.metadata->>'deposit_id' = $2`,
    [kind, depositId],
  );
  return rows;
}

async function refundDone(id: string, status = 'succeeded') {
  return eventually(async () => {
    const row = await refundRow(stack, id);
    return row.status === status ? row : undefined;
  }, 10_000, `refund ${status}`);
}

describe('refundDeposit', () => {
  it('the owner refunds a whole deposit: held at once, refunded at Revio by the worker, debited back to clearing', async () => {
    const person = await signUp(stack, 'rf-full');
    const depositId = await fundByDeposit(stack, person, 20_000);
    const clearingBefore = await systemBalance('revio_clearing');

    const asked = await refundDeposit(stack, person, depositId, 20_000, 'rf-full-1');
    expect(asked.errors).toBeUndefined();
    const refund = asked.data.refundDeposit.result;
    expect(refund).toMatchObject({ depositId, status: 'requested', amount: '20000', byAdmin: false, failureReason: null });

    const done = await refundDone(refund.rowId);
    expect(done.revio_payment_id).toBeTruthy();
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });
    expect(await systemBalance('revio_clearing')).toBe(clearingBefore + 20_000n);
    expect(await entriesOf('refund', depositId)).toMatchObject([{ amount: '20000' }]);
    const purchaseId = await purchaseOf(depositId);
    expect(stack.sandbox.purchase(purchaseId)).toMatchObject({ status: 'refunded', refundable_amount: 0 });
    expect(stack.sandbox.payments().filter((p) => p.related_to.id === purchaseId)).toHaveLength(1);
    expect((await depositRow(stack, depositId)).refunded_amount).toBe('20000');

    // Revio's payment.refunded webhook is applied too (never unmatched), and changes nothing more.
    await stack.sandbox.whenDeliveriesIdle();
    const refundEvents = await eventually(async () => {
      const rows = await deliveriesFor(stack, done.revio_payment_id);
      return rows.some((r) => r.source === 'webhook') ? rows : undefined;
    }, 10_000, 'payment.refunded delivered');
    expect(refundEvents.map((r) => r.event_type)).toContain('payment.refunded');
    expect(refundEvents.map((r) => r.outcome)).not.toContain('unmatched');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });

    // Seen by its owner through GraphQL.
    const seen = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { status refundedAmount refundsByDepositId { nodes { status amount } } } }`, { id: depositId }, person.token);
    expect(seen.data.depositByRowId).toEqual({ status: 'paid', refundedAmount: '20000', refundsByDepositId: { nodes: [{ status: 'succeeded', amount: '20000' }] } });
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
  });

  it('refuses what cannot be refunded with stable codes, and repeats return the first refund', async () => {
    const person = await signUp(stack, 'rf-bad');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const stranger = await signUp(stack, 'rf-stranger');
    expect(codeOf(await refundDeposit(stack, stranger, depositId, 100))).toBe('DEPOSIT_NOT_FOUND');
    expect(codeOf(await refundDeposit(stack, person, depositId, 10_001))).toBe('REFUND_AMOUNT_INVALID');
    expect(codeOf(await refundDeposit(stack, person, depositId, 0))).toBe('REFUND_AMOUNT_INVALID');
    expect(codeOf(await refundDeposit(stack, person, depositId, 100, 'k', ' '))).toBe('REASON_REQUIRED');
    const unpaid = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
    expect(codeOf(await refundDeposit(stack, person, unpaid, 100))).toBe('DEPOSIT_NOT_REFUNDABLE');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });

    // Spent money cannot be refunded by its owner.
    const friend = await signUp(stack, 'rf-friend');
    const sent = await stack.graphql(`mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`,
      { i: { fromWalletId: person.walletId, toEmail: friend.email, amount: '9000', idempotencyKey: 'rf-spend' } }, person.token);
    expect(sent.errors).toBeUndefined();
    expect(codeOf(await refundDeposit(stack, person, depositId, 5_000))).toBe('INSUFFICIENT_FUNDS');

    stack.sandbox.setRefundMode('pending'); // keep the first refund open
    const first = await refundDeposit(stack, person, depositId, 600, 'rf-bad-key');
    expect(first.errors).toBeUndefined();
    const again = await refundDeposit(stack, person, depositId, 600, 'rf-bad-key');
    expect(again.data.refundDeposit.result.rowId).toBe(first.data.refundDeposit.result.rowId);
    expect(codeOf(await refundDeposit(stack, person, depositId, 700, 'rf-bad-key'))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(codeOf(await refundDeposit(stack, person, depositId, 100))).toBe('REFUND_IN_PROGRESS');
    await refundDone(first.data.refundDeposit.result.rowId, 'submitted');
    stack.sandbox.finishRefund(await purchaseOf(depositId), true);
    await refundDone(first.data.refundDeposit.result.rowId);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 400n, held: 0n });
  });

  it('after the window only an admin may refund; the admin refund is logged', async () => {
    const person = await signUp(stack, 'rf-window');
    const depositId = await fundByDeposit(stack, person, 10_000);
    await stack.owner.query(`update app_public.deposits set paid_at = now() - interval '30 days' where id = $1`, [depositId]);
    expect(codeOf(await refundDeposit(stack, person, depositId, 1_000))).toBe('REFUND_WINDOW_CLOSED');
    const byAdmin = await refundDeposit(stack, admin, depositId, 1_000, 'rf-window-admin', 'customer complaint');
    expect(byAdmin.errors).toBeUndefined();
    expect(byAdmin.data.refundDeposit.result).toMatchObject({ byAdmin: true, amount: '1000' });
    await refundDone(byAdmin.data.refundDeposit.result.rowId);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 9_000n, held: 0n });
    const { rows } = await stack.owner.query(`select action, details->>'reason' as reason from audit.admin_actions where target_id = $1`, [depositId]);
    expect(rows).toEqual([{ action: 'refund_deposit', reason: 'customer complaint' }]);
  });

  it('a pending refund stays held until Revio completes it; a failed one releases the hold', async () => {
    const person = await signUp(stack, 'rf-pending');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const purchaseId = await purchaseOf(depositId);
    stack.sandbox.setRefundMode('pending');

    const failing = (await refundDeposit(stack, person, depositId, 4_000)).data.refundDeposit.result.rowId;
    await refundDone(failing, 'submitted');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 4_000n });
    stack.sandbox.finishRefund(purchaseId, false); // purchase.refund_failure
    const failed = await refundDone(failing, 'failed');
    expect(failed.failure_reason).toMatch(/declined the refund/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
    expect(await entriesOf('refund', depositId)).toEqual([]);

    const partial = (await refundDeposit(stack, person, depositId, 2_500)).data.refundDeposit.result.rowId;
    await refundDone(partial, 'submitted');
    stack.sandbox.finishRefund(purchaseId, true); // payment.refunded
    await refundDone(partial);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 7_500n, held: 0n });
    expect(stack.sandbox.purchase(purchaseId)?.refundable_amount).toBe(7_500);
  });

  it('a refund Revio refuses fails at once and releases the hold', async () => {
    const person = await signUp(stack, 'rf-refused');
    const depositId = await fundByDeposit(stack, person, 10_000);
    // Revio already refunded part on its own (a reversal), so our full refund is too large for Revio.
    const purchaseId = await purchaseOf(depositId);
    stack.sandbox.purchase(purchaseId)!.refundable_amount = 3_000; // Revio's view differs from ours
    const refund = (await refundDeposit(stack, person, depositId, 5_000)).data.refundDeposit.result.rowId;
    const failed = await refundDone(refund, 'failed');
    expect(failed.failure_reason).toMatch(/Revio refused the refund/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('a lost answer is retried without refunding twice: the purchase read back confirms the first call', async () => {
    const person = await signUp(stack, 'rf-lost');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const purchaseId = await purchaseOf(depositId);
    // Revio refunds, then the answer is lost (500), and its webhook never arrives.
    stack.sandbox.faults.set({ endpoints: { refundPurchase: { failNext: 1, afterEffect: true } }, webhooks: { outage: { mode: 'drop' } } });
    const refund = (await refundDeposit(stack, person, depositId, 6_000)).data.refundDeposit.result.rowId;
    await refundDone(refund);
    expect(stack.sandbox.payments().filter((p) => p.related_to.id === purchaseId)).toHaveLength(1);
    expect(stack.sandbox.purchase(purchaseId)?.refundable_amount).toBe(4_000);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 4_000n, held: 0n });
    expect(await entriesOf('refund', depositId)).toHaveLength(1);
  });

  it('a call that times out but lands later is not repeated: a read-back before it lands is not believed', async () => {
    const person = await signUp(stack, 'rf-late');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const purchaseId = await purchaseOf(depositId);
    // Revio takes 1.5 s over the refund: our 1 s timeout gives up, the refund lands after it,
    // and a read sent meanwhile still shows the purchase unrefunded. (Less than half the deposit,
    // so a second call would be accepted too.)
    stack.sandbox.faults.set({ endpoints: { refundPurchase: { latencyMs: 1_500 } }, webhooks: { outage: { mode: 'drop' } } });
    try {
      const refund = (await refundDeposit(stack, person, depositId, 4_000)).data.refundDeposit.result.rowId;
      await refundDone(refund);
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // any second call would have landed by now
    } finally {
      stack.sandbox.faults.set({});
    }
    expect(stack.sandbox.payments().filter((p) => p.related_to.id === purchaseId)).toHaveLength(1);
    expect(stack.sandbox.purchase(purchaseId)?.refundable_amount).toBe(6_000);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 6_000n, held: 0n });
  });
  it('an attempt waits while another attempt at the same refund holds it (a paused worker whose job was re-run)', async () => {
    const person = await signUp(stack, 'rf-twice');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const purchaseId = await purchaseOf(depositId);
    await stack.pauseWorker();
    const refund = (await refundDeposit(stack, person, depositId, 3_000)).data.refundDeposit.result.rowId;
    // The paused worker's session still holds the refund's lock (revio-job.ts, exclusively).
    const paused = await stack.owner.connect();
    try {
      await paused.query('select pg_advisory_lock(hashtextextended($1, 0))', [`revio:refund:${refund}`]);
      await stack.resumeWorker();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(stack.sandbox.payments().filter((p) => p.related_to.id === purchaseId)).toHaveLength(0);
      expect((await refundRow(stack, refund)).status).toBe('requested');
    } finally {
      await paused.query('select pg_advisory_unlock_all()');
      paused.release();
    }
    await eventually(async () => (await refundRow(stack, refund)).status === 'succeeded', 15_000, 'refund succeeded');
    expect(stack.sandbox.payments().filter((p) => p.related_to.id === purchaseId)).toHaveLength(1);
  });
});

describe('chargebacks and Revio refunds after the credit', () => {
  it('a chargeback of spent money debits what is there, books the rest as a receivable, and blocks withdrawals until reviewed', async () => {
    const person = await signUp(stack, 'cb-spent');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const friend = await signUp(stack, 'cb-friend');
    const sent = await stack.graphql(`mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`,
      { i: { fromWalletId: person.walletId, toEmail: friend.email, amount: '7000', idempotencyKey: 'cb-spend' } }, person.token);
    expect(sent.errors).toBeUndefined();
    const receivableBefore = await systemBalance('chargeback_receivable');

    const payment = stack.sandbox.chargebackPurchase(await purchaseOf(depositId)); // payment.charged_back, signed
    const reversal = await eventually(async () => {
      const { rows } = await stack.owner.query(`select * from app_public.reversals where revio_payment_id = $1`, [payment.id]);
      return rows[0];
    }, 10_000, 'chargeback applied');
    expect(reversal).toMatchObject({ kind: 'chargeback', amount: '10000', debited_amount: '3000', receivable_amount: '7000', reviewed_at: null });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });
    expect(await systemBalance('chargeback_receivable')).toBe(receivableBefore - 7_000n);
    expect(await entriesOf('chargeback', depositId)).toHaveLength(1);
    expect(await depositRow(stack, depositId)).toMatchObject({ needs_attention: true, reversed_amount: '10000' });
    expect((await depositRow(stack, depositId)).attention_reason).toMatch(/charged back ZAR 100.00.*ZAR 70.00 owed/);
    expect((await deliveriesFor(stack, payment.id)).map((d) => d.outcome)).toEqual(['applied']);

    // Withdrawals wait for an admin; the person sees why.
    const bank = await addBankAccount(stack, person);
    await stack.owner.query(`select ledger.move('adjustment', ledger.system_account('fees', 'ZAR'), $1, 5000)`, [person.walletId]);
    expect(codeOf(await requestWithdrawal(stack, person, bank, 2_000))).toBe('WITHDRAWALS_BLOCKED');
    const mine = await stack.graphql(`{ allReversals { nodes { kind amount debitedAmount receivableAmount reviewedAt } } }`, {}, person.token);
    expect(mine.data.allReversals.nodes).toEqual([{ kind: 'chargeback', amount: '10000', debitedAmount: '3000', receivableAmount: '7000', reviewedAt: null }]);

    // Admins see it and review it; then withdrawals resume.
    expect(codeOf(await stack.graphql(`{ adminReversals { nodes { rowId } } }`, {}, person.token))).toBe('PERMISSION_DENIED');
    const listed = await stack.graphql(`{ adminReversals { nodes { rowId depositId receivableAmount reviewedAt } } }`, {}, admin.token);
    expect(listed.data.adminReversals.nodes).toContainEqual({ rowId: reversal.id, depositId, receivableAmount: '7000', reviewedAt: null });
    const review = `mutation($i: AdminReviewReversalInput!) { adminReviewReversal(input: $i) { result { rowId reviewedAt } } }`;
    expect(codeOf(await stack.graphql(review, { i: { reversalId: reversal.id, note: '' } }, admin.token))).toBe('REASON_REQUIRED');
    const reviewed = await stack.graphql(review, { i: { reversalId: reversal.id, note: 'card fraud confirmed; receivable to collections' } }, admin.token);
    expect(reviewed.data.adminReviewReversal.result.reviewedAt).toBeTruthy();
    expect(codeOf(await stack.graphql(review, { i: { reversalId: reversal.id, note: 'again' } }, admin.token))).toBe('REVERSAL_NOT_OPEN');
    expect((await requestWithdrawal(stack, person, bank, 2_000)).errors).toBeUndefined();
    const audit = await stack.owner.query(`select withdrawals_blocked, receivable_amount::text from audit.reversals where id = $1`, [reversal.id]);
    expect(audit.rows).toEqual([{ withdrawals_blocked: false, receivable_amount: '7000' }]);
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
  });

  it('a refund Revio makes on its own is applied as a reversal (never unmatched); replays change nothing', async () => {
    const person = await signUp(stack, 'cb-provider');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const payment = stack.sandbox.refundPurchase(await purchaseOf(depositId), 4_000); // payment.refunded, no refund of ours
    await eventually(async () => (await depositRow(stack, depositId)).reversed_amount === '4000', 10_000, 'reversal applied');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 6_000n, held: 0n });
    const { rows } = await stack.owner.query(`select kind, debited_amount::text, receivable_amount::text from app_public.reversals where deposit_id = $1`, [depositId]);
    expect(rows).toEqual([{ kind: 'provider_refund', debited_amount: '4000', receivable_amount: '0' }]);

    // The same payment again (a replay with a new updated_on): already applied.
    const replay = await postWebhook(stack, { ...payment, updated_on: payment.updated_on! + 5, event_type: 'payment.refunded' });
    expect(replay.body.outcome).toBe('ignored');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 6_000n, held: 0n });
    expect((await deliveriesFor(stack, payment.id)).map((d) => d.outcome)).not.toContain('unmatched');
  });
});

describe('a chargeback whose webhook never comes', () => {
  it('is reported by the daily reconciliation as taken_back_differs', async () => {
    const person = await signUp(stack, 'cb-lost');
    const depositId = await fundByDeposit(stack, person, 10_000);
    const purchaseId = await purchaseOf(depositId);
    stack.sandbox.faults.set({ webhooks: { outage: { startsInMs: 0, mode: 'drop' } } });
    stack.sandbox.chargebackPurchase(purchaseId, 2_500);
    await runJob(stack, 'revio.reconcile_daily');
    const { rows } = await stack.owner.query(`select kind, detail from audit.revio_discrepancies where deposit_id = $1`, [depositId]);
    expect(rows.map((r) => r.kind)).toEqual(['taken_back_differs']);
    expect(rows[0].detail).toMatch(/refundable ZAR 75.00.*left after refunds and chargebacks ZAR 100.00/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n }); // nothing moved by itself
  });
});

describe('cancelDeposit and cancelWithdrawal', () => {
  const cancelDeposit = (person: Person, depositId: string) =>
    stack.graphql(`mutation($i: CancelDepositInput!) { cancelDeposit(input: $i) { result { rowId status failureReason } } }`, { i: { depositId } }, person.token);
  const cancelWithdrawal = (person: Person, withdrawalId: string) =>
    stack.graphql(`mutation($i: CancelWithdrawalInput!) { cancelWithdrawal(input: $i) { result { rowId status failureReason } } }`, { i: { withdrawalId } }, person.token);

  it('cancels an unpaid deposit at once and closes its checkout at Revio', async () => {
    const person = await signUp(stack, 'cx-dep');
    const depositId = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
    const purchaseId = await eventually(() => purchaseOf(depositId), 10_000, 'purchase created');
    const cancelled = await cancelDeposit(person, depositId);
    expect(cancelled.data.cancelDeposit.result).toMatchObject({ status: 'cancelled', failureReason: 'You cancelled the deposit.' });
    await eventually(async () => stack.sandbox.purchase(purchaseId)?.status === 'cancelled', 10_000, 'purchase cancelled at Revio');
    expect(() => stack.sandbox.payPurchase(purchaseId)).toThrow();
    expect(stack.sandbox.purchase(purchaseId)?.status).toBe('cancelled');
    expect((await cancelDeposit(person, depositId)).data.cancelDeposit.result.status).toBe('cancelled');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });

    const stranger = await signUp(stack, 'cx-stranger');
    expect(codeOf(await cancelDeposit(stranger, depositId))).toBe('DEPOSIT_NOT_FOUND');
    const paid = await fundByDeposit(stack, person, 1_000);
    expect(codeOf(await cancelDeposit(person, paid))).toBe('DEPOSIT_NOT_CANCELLABLE');
  });

  it('a payment that beats the cancel is credited and flagged, never lost', async () => {
    const person = await signUp(stack, 'cx-late');
    const depositId = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
    const purchaseId = await eventually(() => purchaseOf(depositId), 10_000, 'purchase created');
    stack.sandbox.faults.set({ endpoints: { cancelPurchase: { errorRate: 1 } } }); // the cancel cannot reach Revio
    expect((await cancelDeposit(person, depositId)).data.cancelDeposit.result.status).toBe('cancelled');
    stack.sandbox.payPurchase(purchaseId); // purchase.paid arrives for a cancelled deposit
    const row = await eventually(async () => {
      const d = await depositRow(stack, depositId);
      return d.status === 'paid' ? d : undefined;
    }, 10_000, 'late payment credited');
    expect(row.needs_attention).toBe(true);
    expect(row.attention_reason).toMatch(/after the deposit was cancelled: credited anyway/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
    expect(await entriesOf('deposit', depositId)).toHaveLength(1);
  });

  it('with the worker paused: cancelling before anything reached Revio sends nothing there, and releases a withdrawal hold at once', async () => {
    const person = await signUp(stack, 'cx-paused');
    await fundByDeposit(stack, person, 10_000);
    const bank = await addBankAccount(stack, person);
    await stack.pauseWorker();
    try {
      const depositId = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
      const withdrawal = (await requestWithdrawal(stack, person, bank, 4_000)).data.requestWithdrawal.result;
      expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 4_000n });

      const cancelled = await cancelWithdrawal(person, withdrawal.rowId);
      expect(cancelled.data.cancelWithdrawal.result).toMatchObject({ status: 'cancelled', failureReason: 'You cancelled the withdrawal.' });
      expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
      expect((await cancelDeposit(person, depositId)).data.cancelDeposit.result.status).toBe('cancelled');

      await stack.resumeWorker();
      // The queued create jobs run and find nothing to send.
      await eventually(async () => {
        const { rows } = await stack.owner.query(`select count(*)::int as n from graphile_worker.jobs where key in ($1, $2)`, [`deposit:${depositId}`, `withdrawal:${withdrawal.rowId}`]);
        return rows[0].n === 0;
      }, 10_000, 'jobs done');
      expect(stack.sandbox.purchases().filter((p) => p.reference === depositId)).toEqual([]);
      expect(stack.sandbox.payouts().filter((p) => p.reference === withdrawal.rowId)).toEqual([]);
      expect(await withdrawalRow(stack, withdrawal.rowId)).toMatchObject({ status: 'cancelled', payout_requested_at: null });
    } finally {
      await stack.resumeWorker();
    }
  });

  it('a withdrawal already sent to Revio cannot be cancelled', async () => {
    const person = await signUp(stack, 'cx-sent');
    await fundByDeposit(stack, person, 10_000);
    const bank = await addBankAccount(stack, person);
    const withdrawal = (await requestWithdrawal(stack, person, bank, 3_000)).data.requestWithdrawal.result;
    await eventually(async () => (await withdrawalRow(stack, withdrawal.rowId)).status === 'submitted', 10_000, 'submitted');
    expect(codeOf(await cancelWithdrawal(person, withdrawal.rowId))).toBe('WITHDRAWAL_NOT_CANCELLABLE');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 3_000n });
    const stranger = await signUp(stack, 'cx-sent-stranger');
    expect(codeOf(await cancelWithdrawal(stranger, withdrawal.rowId))).toBe('WITHDRAWAL_NOT_FOUND');
  });
});

describe('review paths', () => {
  async function submitted(label: string, amount = 3_000) {
    const person = await signUp(stack, label);
    await fundByDeposit(stack, person, 10_000);
    const bank = await addBankAccount(stack, person);
    const id = (await requestWithdrawal(stack, person, bank, amount)).data.requestWithdrawal.result.rowId;
    const row = await eventually(async () => {
      const w = await withdrawalRow(stack, id);
      return w.status === 'submitted' && w.revio_status === 'pending' ? w : undefined;
    }, 10_000, 'payout executed');
    return { person, id, payoutId: row.revio_payout_id as string };
  }

  function payoutEvent(payoutId: string, status: 'success' | 'error', overrides: { amount?: number; bump?: number } = {}) {
    const payout = stack.sandbox.payout(payoutId)!;
    const at = payout.updated_on + (overrides.bump ?? 10);
    return {
      ...payout, status, updated_on: at, status_history: [...payout.status_history, { status, timestamp: at }],
      payment: { ...payout.payment, amount: overrides.amount ?? payout.payment.amount },
      event_type: status === 'success' ? 'payout.success' : 'payout.failed',
    };
  }

  it('payout succeeded after we marked it failed: flagged, no second movement', async () => {
    const { person, id, payoutId } = await submitted('rv-late-success');
    stack.sandbox.failPayout(payoutId);
    await eventually(async () => (await withdrawalRow(stack, id)).status === 'failed', 10_000, 'failed');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
    expect((await postWebhook(stack, payoutEvent(payoutId, 'success'))).body.outcome).toBe('review');
    expect(await withdrawalRow(stack, id)).toMatchObject({ status: 'failed', needs_attention: true, capture_entry_id: null });
    expect((await withdrawalRow(stack, id)).attention_reason).toMatch(/the money left twice or the failure was wrong/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('payout amount mismatch: flagged, the hold stays', async () => {
    const { person, id, payoutId } = await submitted('rv-mismatch');
    expect((await postWebhook(stack, payoutEvent(payoutId, 'success', { amount: 3_001 }))).body.outcome).toBe('review');
    expect(await withdrawalRow(stack, id)).toMatchObject({ status: 'submitted', needs_attention: true, capture_entry_id: null });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 3_000n });
  });

  it('payout failed after it succeeded: flagged, the debit stands', async () => {
    const { person, id, payoutId } = await submitted('rv-fail-after');
    stack.sandbox.succeedPayout(payoutId);
    await eventually(async () => (await withdrawalRow(stack, id)).status === 'paid', 10_000, 'paid');
    expect((await postWebhook(stack, payoutEvent(payoutId, 'error', { bump: 30 }))).body.outcome).toBe('review');
    expect(await withdrawalRow(stack, id)).toMatchObject({ status: 'paid', needs_attention: true });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 7_000n, held: 0n });
  });

  it('paid after expiry: credited and flagged', async () => {
    const person = await signUp(stack, 'rv-expired');
    const depositId = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
    const purchaseId = await eventually(() => purchaseOf(depositId), 10_000, 'purchase');
    await eventually(async () => (await depositRow(stack, depositId)).status === 'awaiting_payment', 10_000, 'awaiting');
    const purchase = stack.sandbox.purchase(purchaseId)!;
    const expired = { ...purchase, status: 'expired', updated_on: purchase.updated_on + 5, event_type: 'purchase.expired' };
    expect((await postWebhook(stack, expired)).body.outcome).toBe('applied');
    expect((await depositRow(stack, depositId)).status).toBe('expired');
    const paid = await paidEvent(stack, purchaseId, { updatedOn: purchase.updated_on + 10 });
    expect((await postWebhook(stack, paid)).body.outcome).toBe('review');
    expect(await depositRow(stack, depositId)).toMatchObject({ status: 'paid', needs_attention: true });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
  });

  it('a second purchase naming the same deposit: flagged, not credited', async () => {
    const person = await signUp(stack, 'rv-second');
    const depositId = await fundByDeposit(stack, person, 5_000);
    const paid = await paidEvent(stack, await purchaseOf(depositId));
    const other = { ...paid, id: '7d0c4f7e-1111-4a1a-9f00-000000000001', updated_on: paid.updated_on + 3 };
    expect((await postWebhook(stack, other)).body.outcome).toBe('review');
    expect(await depositRow(stack, depositId)).toMatchObject({ status: 'paid', needs_attention: true });
    expect((await depositRow(stack, depositId)).attention_reason).toMatch(/also names this deposit/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
    expect(await entriesOf('deposit', depositId)).toHaveLength(1);
  });

  it('a purchase read back as refunded or charged back with no payment applied yet: flagged, nothing moved', async () => {
    const person = await signUp(stack, 'rv-refunded-snapshot');
    const depositId = await fundByDeposit(stack, person, 5_000);
    const purchase = stack.sandbox.purchase(await purchaseOf(depositId))!;
    const snapshot = { ...purchase, status: 'chargeback', refundable_amount: 0, updated_on: purchase.updated_on + 7, event_type: 'purchase.chargeback' };
    expect((await postWebhook(stack, snapshot)).body.outcome).toBe('review');
    expect((await depositRow(stack, depositId)).attention_reason).toMatch(/expect payment.refunded \/ payment.charged_back/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
  });

  it('a purchase charged back before its payment was seen here (paid webhook lost): flagged, never silent, nothing moved', async () => {
    const person = await signUp(stack, 'rv-charged-unseen');
    const depositId = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId;
    const purchaseId = await eventually(() => purchaseOf(depositId), 10_000, 'purchase');
    await eventually(async () => (await depositRow(stack, depositId)).status === 'awaiting_payment', 10_000, 'awaiting');
    const purchase = stack.sandbox.purchase(purchaseId)!;
    const snapshot = { ...purchase, status: 'chargeback', refundable_amount: 0, updated_on: purchase.updated_on + 7, event_type: 'purchase.chargeback' };
    expect((await postWebhook(stack, snapshot)).body.outcome).toBe('review');
    expect(await depositRow(stack, depositId)).toMatchObject({ status: 'awaiting_payment', needs_attention: true });
    expect((await depositRow(stack, depositId)).attention_reason).toMatch(/its payment was never seen here/);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 0n, held: 0n });
  });
});

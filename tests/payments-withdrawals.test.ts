// Bank accounts and withdrawals end to end, over real HTTP against a database
// of this file's own, with the worker and the Revio sandbox: the hold, the
// payout (created, executed, succeeded or failed), the ledger afterwards, and
// Revio misbehaving (5xx, timeouts whose effect happened anyway, refusals):
// never two payouts for one withdrawal.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decryptAccountNumber } from '../src/payments/bank-crypto.ts';
import { REJECTED_ACCOUNT } from '../src/revio-sandbox/index.ts';
import { ledgerHealth, HEALTHY } from './helpers/ledger.ts';
import {
  balance, eventually, fundByDeposit, signUp, startPaymentsStack, withdrawalRow, WITHDRAWAL_FIELDS,
  type PaymentsStack, type Person,
} from './helpers/payments.ts';

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('withdrawals', {
    payments: { limits: { depositMinCents: 1_000, depositMaxCents: 5_000_000, withdrawalMinCents: 1_000, withdrawalMaxCents: 40_000, withdrawalDailyLimitCents: 60_000 } },
  });
});
afterEach(() => stack.sandbox.faults.reset());
afterAll(() => stack?.close());

async function addBankAccount(person: Person, accountNumber = '62000123456', extra: Record<string, string> = {}) {
  return stack.graphql(
    `mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId accountHolder bankName branchCode accountType accountNumberLast4 } } }`,
    { i: { accountHolder: 'Thandi Person', bankName: 'FNB', branchCode: '250655', accountNumber, accountType: 'cheque', ...extra } },
    person.token,
  );
}

async function requestWithdrawal(person: Person, bankAccountId: string, amount: number | string, key = `wd-${Math.random()}`) {
  return stack.graphql(
    `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { ${WITHDRAWAL_FIELDS} } } }`,
    { i: { walletId: person.walletId, amount: String(amount), bankAccountId, idempotencyKey: key } },
    person.token,
  );
}

/** A person with a funded wallet and a bank account. */
async function funded(label: string, amount = 50_000, accountNumber?: string) {
  const person = await signUp(stack, label);
  await fundByDeposit(stack, person, amount);
  const account = await addBankAccount(person, accountNumber);
  expect(account.errors).toBeUndefined();
  return { person, bankAccountId: account.data.addBankAccount.result.rowId as string };
}

const payoutsFor = (withdrawalId: string) => stack.sandbox.payouts().filter((p) => p.reference === withdrawalId);

async function submittedPayout(withdrawalId: string) {
  const row = await eventually(async () => {
    const w = await withdrawalRow(stack, withdrawalId);
    return w.status === 'submitted' && w.revio_status === 'pending' ? w : undefined;
  }, 10_000, 'payout executed');
  return row.revio_payout_id as string;
}

async function systemBalances() {
  const { rows } = await stack.owner.query(`select kind::text, balance::text from audit.system_balances where currency = 'ZAR'`);
  return Object.fromEntries(rows.map((r) => [r.kind, BigInt(r.balance)]));
}

describe('addBankAccount', () => {
  it('stores the account number encrypted and shows only its last 4 digits', async () => {
    const person = await signUp(stack, 'bank-add');
    const added = await addBankAccount(person, '6200 0123 456');
    expect(added.errors).toBeUndefined();
    const account = added.data.addBankAccount.result;
    expect(account).toMatchObject({ accountHolder: 'Thandi Person', bankName: 'FNB', branchCode: '250655', accountType: 'cheque', accountNumberLast4: '3456' });

    const { rows } = await stack.owner.query(`select ciphertext from app_private.bank_account_numbers where bank_account_id = $1`, [account.rowId]);
    const ciphertext: Buffer = rows[0].ciphertext;
    expect(ciphertext.includes(Buffer.from('62000123456'))).toBe(false);
    expect(decryptAccountNumber(stack.bankAccountKey, person.userId, ciphertext)).toBe('62000123456');
    expect(() => decryptAccountNumber(stack.bankAccountKey, '00000000-0000-4000-8000-000000000000', ciphertext)).toThrow(/does not decrypt/);

    const stranger = await signUp(stack, 'bank-stranger');
    expect((await stack.graphql(`{ allBankAccounts { nodes { rowId } } }`, {}, stranger.token)).data.allBankAccounts.nodes).toEqual([]);
    expect((await stack.graphql(`{ allBankAccounts { nodes { accountNumberLast4 } } }`, {}, person.token)).data.allBankAccounts.nodes).toEqual([{ accountNumberLast4: '3456' }]);
  });

  it('refuses malformed details with BANK_ACCOUNT_INVALID', async () => {
    const person = await signUp(stack, 'bank-bad');
    expect((await addBankAccount(person, '12345')).errors?.[0].extensions?.code).toBe('BANK_ACCOUNT_INVALID');
    expect((await addBankAccount(person, '12345678x')).errors?.[0].extensions?.code).toBe('BANK_ACCOUNT_INVALID');
    expect((await addBankAccount(person, '62000123456', { branchCode: '25065' })).errors?.[0].extensions?.code).toBe('BANK_ACCOUNT_INVALID');
    expect((await addBankAccount(person, '62000123456', { accountHolder: ' ' })).errors?.[0].extensions?.code).toBe('BANK_ACCOUNT_INVALID');
    expect((await addBankAccount({ ...person, token: '' })).errors?.[0].extensions?.code).toBe('PERMISSION_DENIED');
  });
});

describe('requestWithdrawal', () => {
  it('holds the money at once, pays it out through Revio, and moves it wallet → in flight → clearing', async () => {
    const before = await systemBalances();
    const { person, bankAccountId } = await funded('wd-happy', 50_000);
    const requested = await requestWithdrawal(person, bankAccountId, 30_000);
    expect(requested.errors).toBeUndefined();
    const withdrawal = requested.data.requestWithdrawal.result;
    expect(withdrawal).toMatchObject({ status: 'requested', amount: '30000', currency: 'ZAR', failureReason: null });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 50_000n, held: 30_000n });

    const payoutId = await submittedPayout(withdrawal.rowId);
    expect(payoutsFor(withdrawal.rowId)).toHaveLength(1);
    expect(stack.sandbox.payout(payoutId)?.payment.amount).toBe(30_000);
    stack.sandbox.succeedPayout(payoutId);
    const done = await eventually(async () => {
      const r = await stack.graphql(`query($id: UUID!) { withdrawalByRowId(rowId: $id) { status closedAt bankAccountByBankAccountId { accountNumberLast4 } } }`, { id: withdrawal.rowId }, person.token);
      return r.data.withdrawalByRowId.status === 'paid' ? r.data.withdrawalByRowId : undefined;
    }, 10_000, 'paid');
    expect(done.bankAccountByBankAccountId.accountNumberLast4).toBe('3456');

    expect(await balance(stack, person.walletId)).toEqual({ balance: 20_000n, held: 0n });
    const after = await systemBalances();
    expect(after.withdrawals_in_flight - (before.withdrawals_in_flight ?? 0n)).toBe(0n);
    expect(after.revio_clearing - (before.revio_clearing ?? 0n)).toBe(-50_000n + 30_000n);
    const entries = await stack.owner.query(`select kind::text from ledger.entries where metadata->>'withdrawal_id' = $1 order by created_at`, [withdrawal.rowId]);
    expect(entries.rows.map((r) => r.kind)).toEqual(['withdrawal', 'payout']);
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
  });

  it('a payout that fails releases the hold and tells the person why', async () => {
    const { person, bankAccountId } = await funded('wd-rejected', 20_000, REJECTED_ACCOUNT);
    const id = (await requestWithdrawal(person, bankAccountId, 15_000)).data.requestWithdrawal.result.rowId;
    const failed = await eventually(async () => {
      const r = await stack.graphql(`query($id: UUID!) { withdrawalByRowId(rowId: $id) { status failureReason } }`, { id }, person.token);
      return r.data.withdrawalByRowId.status === 'failed' ? r.data.withdrawalByRowId : undefined;
    }, 10_000, 'failed');
    expect(failed.failureReason).toBe('The bank rejected the payment: account closed or invalid.');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 20_000n, held: 0n });
    expect(payoutsFor(id)).toHaveLength(1);
  });

  it('enforces limits, funds, ownership and idempotency with clear codes', async () => {
    const { person, bankAccountId } = await funded('wd-rules', 100_000);
    const other = await funded('wd-other', 1_000);
    expect((await requestWithdrawal(person, bankAccountId, 999)).errors?.[0].extensions?.code).toBe('WITHDRAWAL_AMOUNT_OUT_OF_RANGE');
    expect((await requestWithdrawal(person, bankAccountId, 40_001)).errors?.[0]).toMatchObject({
      message: 'A withdrawal must be between ZAR 10.00 and ZAR 400.00', extensions: { code: 'WITHDRAWAL_AMOUNT_OUT_OF_RANGE' },
    });
    expect((await requestWithdrawal(person, other.bankAccountId, 5_000)).errors?.[0].extensions?.code).toBe('BANK_ACCOUNT_NOT_FOUND');
    expect((await requestWithdrawal(other.person, other.bankAccountId, 5_000)).errors?.[0].extensions?.code).toBe('INSUFFICIENT_FUNDS');
    expect((await requestWithdrawal(person, bankAccountId, '1e4')).errors?.[0].extensions?.code).toBe('AMOUNT_INVALID');

    const first = await requestWithdrawal(person, bankAccountId, 40_000, 'k1');
    const repeat = await requestWithdrawal(person, bankAccountId, 40_000, 'k1');
    expect(repeat.data.requestWithdrawal.result.rowId).toBe(first.data.requestWithdrawal.result.rowId);
    expect((await requestWithdrawal(person, bankAccountId, 30_000, 'k1')).errors?.[0].extensions?.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // 40 000 of the 60 000 a day are used: 20 000 fits, 20 001 does not.
    expect((await requestWithdrawal(person, bankAccountId, 20_001)).errors?.[0]).toMatchObject({
      message: 'Withdrawals from this wallet may total at most ZAR 600.00 in 24 hours; ZAR 200.00 is left',
      extensions: { code: 'WITHDRAWAL_DAILY_LIMIT_EXCEEDED' },
    });
    expect((await requestWithdrawal(person, bankAccountId, 20_000)).errors).toBeUndefined();
    expect(await balance(stack, person.walletId)).toEqual({ balance: 100_000n, held: 60_000n });
  });
});

describe('when Revio misbehaves', () => {
  it('5xx on create payout: retried, then exactly one payout', async () => {
    const { person, bankAccountId } = await funded('wd-5xx', 10_000);
    stack.sandbox.faults.set({ endpoints: { createPayout: { failNext: 2, errorStatus: 502 } } });
    const id = (await requestWithdrawal(person, bankAccountId, 5_000)).data.requestWithdrawal.result.rowId;
    const payoutId = await submittedPayout(id);
    expect(payoutsFor(id).map((p) => p.id)).toEqual([payoutId]);
    stack.sandbox.succeedPayout(payoutId);
    await eventually(async () => (await withdrawalRow(stack, id)).status === 'paid', 10_000, 'paid');
  });

  it('a create whose answer is lost (timeout after Revio made it): looked up by reference, never made twice', async () => {
    const { person, bankAccountId } = await funded('wd-timeout', 10_000);
    stack.sandbox.faults.set({ endpoints: { createPayout: { hangNext: 1, afterEffect: true }, executePayout: { failNext: 1, errorStatus: 503, retryAfterSeconds: 0 } } });
    const id = (await requestWithdrawal(person, bankAccountId, 5_000)).data.requestWithdrawal.result.rowId;
    const payoutId = await submittedPayout(id);
    expect(payoutsFor(id).map((p) => p.id)).toEqual([payoutId]);
    const { rows } = await stack.owner.query(`select payout_requested_at is not null as marked from app_public.withdrawals where id = $1`, [id]);
    expect(rows[0].marked).toBe(true);
  });

  it('an execute whose answer is lost is not executed again', async () => {
    const { person, bankAccountId } = await funded('wd-exec', 10_000);
    stack.sandbox.faults.set({ endpoints: { executePayout: { hangNext: 1, afterEffect: true } } });
    const id = (await requestWithdrawal(person, bankAccountId, 5_000)).data.requestWithdrawal.result.rowId;
    const payoutId = await submittedPayout(id);
    expect(payoutsFor(id)).toHaveLength(1);
    stack.sandbox.succeedPayout(payoutId);
    await eventually(async () => (await withdrawalRow(stack, id)).status === 'paid', 10_000, 'paid');
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
  });

  it('a final refusal (4xx) fails the withdrawal with Revio\'s reason and releases the hold', async () => {
    const { person, bankAccountId } = await funded('wd-4xx', 10_000);
    stack.sandbox.faults.set({ endpoints: { createPayout: { failNext: 1, errorStatus: 403 } } });
    const id = (await requestWithdrawal(person, bankAccountId, 5_000)).data.requestWithdrawal.result.rowId;
    const failed = await eventually(async () => {
      const w = await withdrawalRow(stack, id);
      return w.status === 'failed' ? w : undefined;
    }, 10_000, 'failed');
    expect(failed.failure_reason).toMatch(/^Revio refused the payout/);
    expect(payoutsFor(id)).toHaveLength(0);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('5xx and a timeout on create purchase: retried, then exactly one purchase', async () => {
    const person = await signUp(stack, 'dep-5xx');
    stack.sandbox.faults.set({ endpoints: { createPurchase: { failNext: 1, errorStatus: 500 } } });
    const first = await fundByDeposit(stack, person, 2_000);
    stack.sandbox.faults.set({ endpoints: { createPurchase: { hangNext: 1, afterEffect: true } } });
    const second = await fundByDeposit(stack, person, 3_000);
    for (const id of [first, second]) expect(stack.sandbox.purchases().filter((p) => p.reference === id)).toHaveLength(1);
    expect(await balance(stack, person.walletId)).toEqual({ balance: 5_000n, held: 0n });
  });
});

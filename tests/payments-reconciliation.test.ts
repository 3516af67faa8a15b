// Reconciliation and dead letters, with the worker and the sandbox, in a
// database of this file's own (the checks read global tables): webhooks that
// never came are made up for by asking Revio; the daily check writes what
// Revio and the clearing account disagree on; a job that runs out of
// attempts is a dead letter and its deposit needs attention.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fund } from './helpers/ledger.ts';
import {
  balance, createDeposit, depositRow, eventually, fundByDeposit, postWebhook, runJob, signUp, startPaymentsStack, withdrawalRow,
  type PaymentsStack, type Person,
} from './helpers/payments.ts';

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('reconciliation');
});
afterEach(() => stack.sandbox.faults.reset());
afterAll(() => stack?.close());

const dropWebhooks = () => stack.sandbox.faults.set({ webhooks: { outage: { startsInMs: 0, mode: 'drop' } } });

async function awaitingDeposit(person: Person, amount: number) {
  const id = (await createDeposit(stack, person, amount)).data.createDeposit.result.rowId as string;
  const row = await eventually(async () => {
    const r = await depositRow(stack, id);
    return r.status === 'awaiting_payment' ? r : undefined;
  }, 10_000, 'awaiting payment');
  return { id, purchaseId: row.revio_purchase_id as string };
}

describe('reconciliation', () => {
  it('the daily check records what Revio and the clearing account disagree on', async () => {
    const person = await signUp(stack, 'rec-daily');
    await fundByDeposit(stack, person, 5_000); // agrees: no discrepancy for it
    dropWebhooks();
    const unpaid = await awaitingDeposit(person, 4_000);
    stack.sandbox.payPurchase(unpaid.purchaseId); // paid at Revio, never told
    await fund(stack.owner, person.walletId, 777); // a clearing posting no deposit explains

    await runJob(stack, 'revio.reconcile_daily');
    const { rows } = await stack.owner.query(`select kind, object_id, deposit_id, currency, ledger_amount::int, revio_amount::int from audit.revio_discrepancies order by id`);
    expect(rows).toEqual([
      { kind: 'paid_not_credited', object_id: unpaid.purchaseId, deposit_id: unpaid.id, currency: 'ZAR', ledger_amount: 0, revio_amount: 4_000 },
      { kind: 'clearing_total', object_id: null, deposit_id: null, currency: 'ZAR', ledger_amount: 5_000, revio_amount: 9_000 },
      { kind: 'clearing_unexplained', object_id: null, deposit_id: null, currency: 'ZAR', ledger_amount: 5_777, revio_amount: 5_000 },
    ]);
    // Running it again writes nothing new while those are open.
    await runJob(stack, 'revio.reconcile_daily');
    expect((await stack.owner.query(`select count(*)::int as n from audit.revio_discrepancies`)).rows[0].n).toBe(3);
  });

  it('recovers a deposit and a payout whose webhooks never came, through the webhook path', async () => {
    const person = await signUp(stack, 'rec-pending');
    await fundByDeposit(stack, person, 20_000);
    const account = await stack.graphql(
      `mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId } } }`,
      { i: { accountHolder: 'Rec Person', bankName: 'Capitec', branchCode: '470010', accountNumber: '1234567890', accountType: 'savings' } },
      person.token,
    );
    const deposit = await awaitingDeposit(person, 6_000);
    const withdrawalId = (await stack.graphql(
      `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { rowId } } }`,
      { i: { walletId: person.walletId, amount: '8000', bankAccountId: account.data.addBankAccount.result.rowId, idempotencyKey: 'rec-w' } },
      person.token,
    )).data.requestWithdrawal.result.rowId;
    const payoutId = await eventually(async () => {
      const w = await withdrawalRow(stack, withdrawalId);
      return w.revio_status === 'pending' ? w.revio_payout_id : undefined;
    }, 10_000, 'payout executed');

    dropWebhooks();
    stack.sandbox.payPurchase(deposit.purchaseId);
    stack.sandbox.succeedPayout(payoutId);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await depositRow(stack, deposit.id)).status).toBe('awaiting_payment');
    expect((await withdrawalRow(stack, withdrawalId)).status).toBe('submitted');

    await runJob(stack, 'revio.reconcile_pending');
    expect(await depositRow(stack, deposit.id)).toMatchObject({ status: 'paid' });
    expect(await withdrawalRow(stack, withdrawalId)).toMatchObject({ status: 'paid' });
    expect(await balance(stack, person.walletId)).toEqual({ balance: 18_000n, held: 0n });
    const { rows } = await stack.owner.query(
      `select object_id, event_type, outcome from audit.revio_webhook_log where source = 'reconciliation' and object_id = any($1) order by object_id`,
      [[deposit.purchaseId, payoutId]],
    );
    expect(rows).toEqual(expect.arrayContaining([
      { object_id: deposit.purchaseId, event_type: 'purchase.paid', outcome: 'applied' },
      { object_id: payoutId, event_type: 'payout.success', outcome: 'applied' },
    ]));

    // The webhooks arriving late are duplicates of what reconciliation applied.
    stack.sandbox.faults.reset();
    const late = await stack.revio.getPurchase(deposit.purchaseId);
    expect((await postWebhook(stack, { ...late, event_type: 'purchase.paid' })).body.outcome).toBe('duplicate');
  });
});

describe('dead letters', () => {
  it('a job that runs out of attempts is visible in audit.dead_jobs and its deposit needs attention', async () => {
    const person = await signUp(stack, 'dead');
    stack.sandbox.faults.set({ endpoints: { createPurchase: { errorRate: 1, errorStatus: 500 } } });
    const id = (await createDeposit(stack, person, 5_000)).data.createDeposit.result.rowId as string;
    // 2 job attempts of 3 quick tries each, e^1 s apart.
    const dead = await eventually(async () => {
      const { rows } = await stack.owner.query(`select * from audit.dead_jobs where deposit_id = $1`, [id]);
      return rows[0];
    }, 15_000, 'dead letter');
    expect(dead).toMatchObject({ task: 'revio.create_purchase', job_key: `deposit:${id}`, attempts: 2, max_attempts: 2, payment_status: 'pending' });
    expect(dead.last_error).toMatch(/HTTP 500/);
    const row = await depositRow(stack, id);
    expect(row).toMatchObject({ status: 'pending', needs_attention: true });
    expect(row.attention_reason).toMatch(/^revio\.create_purchase gave up after 2 attempts: .*HTTP 500/);
    const api = await stack.graphql(`query($id: UUID!) { depositByRowId(rowId: $id) { status needsAttention } }`, { id }, person.token);
    expect(api.data.depositByRowId).toEqual({ status: 'pending', needsAttention: true });
    const { rows } = await stack.owner.query(`select kind from audit.payments_needing_attention where id = $1`, [id]);
    expect(rows).toEqual([{ kind: 'deposit' }]);
  });
});

describe('audit views', () => {
  it('app_auditor reads every payments view and nothing behind them', async () => {
    const client = new pg.Client({ connectionString: stack.db.rootUrl });
    await client.connect();
    try {
      await client.query('begin; set local role app_auditor');
      for (const view of ['revio_webhook_log', 'unmatched_revio_events', 'payments_needing_attention', 'dead_jobs', 'revio_discrepancies']) {
        await client.query(`select * from audit.${view} limit 1`);
      }
      await expect(client.query('select * from app_private.revio_deliveries limit 1')).rejects.toMatchObject({ code: '42501' });
      await client.query('rollback');
      await client.query('begin; set local role app_auditor');
      await expect(client.query('select * from app_public.deposits limit 1')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.query('rollback').catch(() => undefined);
      await client.end();
    }
  });
});

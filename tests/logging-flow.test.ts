// Logs after a whole money flow: register, sign in, deposit (worker job,
// signed webhook), bank account, withdrawal (payout job, decrypted account
// number), payout success. Every line is JSON; request lines carry the request
// id and, when signed in, the user id; task lines carry the job id; and no
// email, password, token, account number or webhook signature appears anywhere.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeLogger } from '../src/logger.ts';
import { PASSWORD } from './helpers/api.ts';
import { eventually, fundByDeposit, signUp, startPaymentsStack, withdrawalRow, type PaymentsStack } from './helpers/payments.ts';

const lines: string[] = [];
const destination = new Writable({
  write(chunk, _encoding, done) {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('logflow', { logger: makeLogger('debug', destination) });
});
afterAll(() => stack?.close());

it('after deposit and withdrawal, logs are correlated and hold no personal data, credentials or signatures', async () => {
  const person = await signUp(stack, 'logflow');
  const login = await stack.graphql(`mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }`, { i: { email: person.email, password: PASSWORD } });
  const { accessToken, refreshToken } = login.data.login;
  const depositId = await fundByDeposit(stack, { ...person, token: accessToken }, 40_000);

  const accountNumber = '62000987654';
  const bank = await stack.graphql(
    `mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId } } }`,
    { i: { accountHolder: 'Log Flow', bankName: 'FNB', branchCode: '250655', accountNumber, accountType: 'cheque' } },
    accessToken,
  );
  const requested = await stack.graphql(
    `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { rowId } } }`,
    { i: { walletId: person.walletId, amount: '15000', bankAccountId: bank.data.addBankAccount.result.rowId, idempotencyKey: 'logflow-wd' } },
    accessToken,
  );
  const withdrawalId: string = requested.data.requestWithdrawal.result.rowId;
  const payoutId = await eventually(async () => {
    const w = await withdrawalRow(stack, withdrawalId);
    return w.status === 'submitted' && w.revio_status === 'pending' ? (w.revio_payout_id as string) : undefined;
  }, 10_000, 'payout executed');
  stack.sandbox.succeedPayout(payoutId);
  await eventually(async () => (await withdrawalRow(stack, withdrawalId)).status === 'paid', 10_000, 'withdrawal paid');
  // A failing request too: its error path must not leak either.
  await stack.graphql('{ currentUser { email } }', {}, `${accessToken}x`);

  const { rows } = await stack.owner.query(
    `select headers->>'x-signature' as signature from app_private.revio_deliveries where source = 'webhook' and headers ? 'x-signature'`,
  );
  const signatures: string[] = rows.map((r) => r.signature);
  expect(signatures.length).toBeGreaterThanOrEqual(2);

  const text = lines.join('\n');
  const entries = lines.map((line) => JSON.parse(line));
  for (const secret of [person.email, PASSWORD, person.token, accessToken, refreshToken, accountNumber, accountNumber.slice(0, 8), ...signatures]) {
    expect(text, 'a secret is in the logs').not.toContain(secret);
  }
  expect(text).not.toMatch(/@example\.com/);

  // Request lines: the request id everywhere, the user id once signed in.
  const requests = entries.filter((e) => e.req?.url === '/graphql');
  expect(requests.length).toBeGreaterThanOrEqual(5);
  for (const e of requests) expect(e.req.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(requests.filter((e) => e.userId === person.userId).length).toBeGreaterThanOrEqual(3);
  const webhooks = entries.filter((e) => e.req?.url === '/webhooks/revio');
  expect(webhooks.length).toBeGreaterThanOrEqual(2);

  // Worker lines: job id and task, from graphile-worker and from our tasks alike.
  const jobLines = entries.filter((e) => typeof e.task === 'string' && e.task.startsWith('revio.'));
  expect(jobLines.length).toBeGreaterThan(0);
  for (const e of jobLines) expect(String(e.jobId)).toMatch(/^\d+$/);
  expect(jobLines.some((e) => String(e.msg).includes(depositId))).toBe(true);
  expect(jobLines.some((e) => String(e.msg).includes(withdrawalId))).toBe(true);
});

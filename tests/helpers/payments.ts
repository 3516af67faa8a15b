// The whole payment path for a test file: its own database (a clone, since
// the worker must not take other files' jobs), the Revio sandbox, the real
// API over HTTP with the webhook route registered at the sandbox, and a
// running worker with fast retries.
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { connectionOptions, makePool } from '../../src/db/pools.ts';
import { startApi, type Api } from '../../src/http/app.ts';
import { makeLogger } from '../../src/logger.ts';
import type { Metrics } from '../../src/metrics/registry.ts';
import { generateBankAccountKey, parseBankAccountKey, type BankAccountKey } from '../../src/payments/bank-crypto.ts';
import { paymentPgSettings, paymentSettingsFromEnv, type PaymentSettings } from '../../src/payments/config.ts';
import { publicKeySource, signRevioBody, type RevioClient } from '../../src/revio/index.ts';
import type { RevioSandbox, RevioSandboxOptions } from '../../src/revio-sandbox/index.ts';
import { startWorker, type StartWorkerOptions, type Worker } from '../../src/worker/runner.ts';
import { grantAdmin } from '../../src/cli/admin-grant.ts';
import { PASSWORD, uniqueEmail, type GraphQLResponse } from './api.ts';
import { createOwnDatabase, type OwnDatabase } from './database.ts';
import { clientFor, startTestSandbox, testPrivateKeyPem } from './revio.ts';

export interface StackOptions {
  sandbox?: RevioSandboxOptions;
  payments?: Partial<PaymentSettings>;
  /** Revio client timeout (the sandbox's hang faults wait for it). */
  clientTimeoutMs?: number;
  worker?: boolean;
  /** One registry for the API and the worker, as under `npm start`. */
  metrics?: Metrics;
  logger?: Logger;
  ledgerCheckIntervalSeconds?: number;
  /** How the worker delivers account emails (default: the log transport). */
  email?: StartWorkerOptions['email'];
}

export interface PaymentsStack {
  db: OwnDatabase;
  owner: pg.Pool;
  sandbox: RevioSandbox;
  revio: RevioClient;
  api: Api;
  url: string;
  worker?: Worker;
  payments: PaymentSettings;
  bankAccountKey: BankAccountKey;
  /** Stops the worker (jobs wait in the queue) … */
  pauseWorker(): Promise<void>;
  /** … and starts a new one. */
  resumeWorker(): Promise<void>;
  graphql<T = any>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

/** Fast settings for tests: 3 quick tries 20 ms apart, 2 job attempts, reconcile at once. */
export const TEST_PAYMENTS: Partial<PaymentSettings> = {
  jobMaxAttempts: 2,
  quickRetries: 3,
  retryBaseMs: 20,
  // Above the 1 s client timeout plus the sandbox latency tests inject, below the first job backoff (2.7 s).
  inFlightGraceMs: 2_500,
  reconcileMinAgeSeconds: 0,
  // Credits available at once, as before clearing existed (tests/payments-lifecycle.test.ts sets its own).
  depositClearingSeconds: 0,
};

export async function startPaymentsStack(label: string, options: StackOptions = {}): Promise<PaymentsStack> {
  const logger = options.logger ?? makeLogger(process.env.LOG_LEVEL ?? 'silent');
  const db = await createOwnDatabase(label);
  const sandbox = await startTestSandbox(options.sandbox);
  const revio = clientFor(sandbox, { timeoutMs: options.clientTimeoutMs ?? 1_000 });
  const payments = { ...paymentSettingsFromEnv({}), ...TEST_PAYMENTS, ...options.payments };
  const bankAccountKey = parseBankAccountKey(generateBankAccountKey());
  const authPool = makePool(db.authUrl, 'test-api', logger, 20, paymentPgSettings(payments));
  const tokens = { keys: await loadSigningKeys(await generatePrivateJwk()), issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 900 };
  // Fetched before the first delivery, as a running API has it: on a loaded CI
  // machine the first fetch could miss the 1 s client timeout, and that
  // delivery got 503 WEBHOOK_KEY_UNAVAILABLE instead of what the test asserts.
  const webhookKey = publicKeySource(revio);
  await eventually(() => webhookKey.get().then(() => true, () => false), 15_000, "Revio's webhook key");
  const api = await startApi({
    host: '127.0.0.1',
    port: 0,
    authPool,
    tokens,
    logger,
    development: false,
    bodyLimitBytes: 100_000,
    payments: { bankAccountKey, pgSettings: paymentPgSettings(payments) },
    revioWebhook: { publicKey: webhookKey, bodyLimitBytes: payments.webhookBodyLimitBytes },
    metrics: options.metrics,
    ledgerCheckIntervalSeconds: options.ledgerCheckIntervalSeconds,
  });
  await revio.createWebhook({ title: 'pgwallet test', callback: `${api.url}/webhooks/revio`, allEvents: true });
  const makeWorker = () =>
    startWorker({ connectionString: db.workerUrl, logger, cron: false, concurrency: 4, pollInterval: 50, metrics: options.metrics, revio: { client: revio, payments, bankAccountKey }, email: options.email });
  const worker = options.worker === false ? undefined : await makeWorker();
  const owner = new pg.Pool({ connectionString: db.ownerUrl, max: 5, options: connectionOptions(paymentPgSettings(payments)) });

  const stack: PaymentsStack = {
    db, owner, sandbox, revio, api, url: api.url, worker, payments, bankAccountKey,
    async pauseWorker() {
      await stack.worker?.stop();
      stack.worker = undefined;
    },
    async resumeWorker() {
      stack.worker ??= await makeWorker();
    },
    async graphql(query, variables, token) {
      const response = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, ...((await response.json()) as object) };
    },
    async close() {
      await stack.worker?.stop();
      await api.close();
      await sandbox.close();
      await authPool.end();
      await owner.end();
      await db.drop();
    },
  };
  return stack;
}

export interface Person {
  email: string;
  token: string;
  userId: string;
  walletId: string;
}

/** Registers through the API (email verified) and finds the person's ZAR wallet. */
export async function signUp(stack: PaymentsStack, label = 'person'): Promise<Person> {
  const email = uniqueEmail(label);
  const result = await stack.graphql(
    `mutation($i: RegisterInput!) { register(input: $i) { accessToken user { rowId } } }`,
    { i: { email, password: PASSWORD, fullName: `Test ${label}` } },
  );
  if (!result.data?.register) throw new Error(`register failed: ${JSON.stringify(result.errors)}`);
  // Verified, as the emailed link would make it (tests/accounts.test.ts covers the link): withdrawals need it.
  await stack.owner.query('update app_public.users set email_verified_at = now() where id = $1', [result.data.register.user.rowId]);
  const { rows } = await stack.owner.query(`select ledger.open_wallet($1, 'ZAR') as id`, [result.data.register.user.rowId]);
  return { email, token: result.data.register.accessToken, userId: result.data.register.user.rowId, walletId: rows[0].id };
}

/** Polls until `check` returns something other than undefined, null or false. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const DEPOSIT_FIELDS = 'rowId status amount currency checkoutUrl failureReason needsAttention';
export const WITHDRAWAL_FIELDS = 'rowId status amount currency failureReason needsAttention';

export async function createDeposit(stack: PaymentsStack, person: Person, amount: number | string, key = `dep-${Math.random()}`) {
  return stack.graphql(
    `mutation($i: CreateDepositInput!) { createDeposit(input: $i) { result { ${DEPOSIT_FIELDS} } } }`,
    { i: { walletId: person.walletId, amount: String(amount), idempotencyKey: key } },
    person.token,
  );
}

export async function depositRow(stack: PaymentsStack, id: string) {
  const { rows } = await stack.owner.query(`select * from app_public.deposits where id = $1`, [id]);
  return rows[0];
}

export async function withdrawalRow(stack: PaymentsStack, id: string) {
  const { rows } = await stack.owner.query(`select * from app_public.withdrawals where id = $1`, [id]);
  return rows[0];
}

/** A deposit created through the API and paid through the sandbox's shortcut; resolves once credited. */
export async function fundByDeposit(stack: PaymentsStack, person: Person, amount: number): Promise<string> {
  const created = await createDeposit(stack, person, amount);
  const id: string = created.data.createDeposit.result.rowId;
  const purchaseId = await eventually(async () => (await depositRow(stack, id))?.revio_purchase_id ?? undefined, 10_000, 'purchase created');
  stack.sandbox.payPurchase(purchaseId);
  await eventually(async () => (await depositRow(stack, id)).status === 'paid', 10_000, 'deposit credited');
  return id;
}

export async function balance(stack: PaymentsStack, walletId: string) {
  const { rows } = await stack.owner.query(`select balance::text, held::text from ledger.accounts where id = $1`, [walletId]);
  return { balance: BigInt(rows[0].balance), held: BigInt(rows[0].held) };
}

export type Signing = 'revio' | 'none' | 'garbage' | 'other-key';
let otherKey: string | undefined;

/** POSTs a body to /webhooks/revio, signed as Revio (the sandbox's key) or not. */
export async function postWebhook(stack: PaymentsStack, body: object | string, signing: Signing = 'revio') {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signing === 'revio') headers['x-signature'] = signRevioBody(raw, testPrivateKeyPem());
  if (signing === 'garbage') headers['x-signature'] = 'bm90IGEgc2lnbmF0dXJl';
  if (signing === 'other-key') {
    otherKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    headers['x-signature'] = signRevioBody(raw, otherKey);
  }
  const response = await fetch(`${stack.url}/webhooks/revio`, { method: 'POST', headers, body: raw });
  return { status: response.status, body: (await response.json()) as any };
}

/** A purchase.paid snapshot of a deposit's purchase, as Revio would send it (amount/currency overridable). */
export async function paidEvent(stack: PaymentsStack, purchaseId: string, overrides: { amount?: number; currency?: string; updatedOn?: number } = {}) {
  const purchase = await stack.revio.getPurchase(purchaseId);
  const now = overrides.updatedOn ?? purchase.updated_on + 1;
  const amount = overrides.amount ?? purchase.purchase.total;
  const currency = overrides.currency ?? purchase.purchase.currency;
  return {
    ...purchase,
    status: 'paid',
    status_history: [...purchase.status_history, { status: 'paid', timestamp: now }],
    payment: { is_outgoing: false, payment_type: 'purchase', amount, currency, net_amount: amount, fee_amount: 0, paid_on: now },
    updated_on: now,
    event_type: 'purchase.paid',
  };
}

export async function deliveriesFor(stack: PaymentsStack, objectId: string) {
  const { rows } = await stack.owner.query(
    `select source, signature_ok, event_type, status, outcome, detail from app_private.revio_deliveries where object_id = $1 order by id`,
    [objectId],
  );
  return rows;
}

/** Queues a task by hand (cron is off in tests) and waits until it has run. */
export async function runJob(stack: PaymentsStack, task: string, payload: object = {}): Promise<void> {
  const { rows } = await stack.owner.query(`select id from graphile_worker.add_job($1, $2::json, max_attempts := 1)`, [task, JSON.stringify(payload)]);
  await eventually(async () => {
    const job = await stack.owner.query(`select last_error from graphile_worker.jobs where id = $1`, [rows[0].id]);
    if (job.rowCount === 0) return true; // completed jobs are deleted
    if (job.rows[0].last_error) throw new Error(`${task} failed: ${job.rows[0].last_error}`);
    return undefined;
  }, 15_000, `${task} to run`);
}

/** The stable error code of a GraphQL answer, if it failed. */
export const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

/** A person made admin by the CLI's function, signed in again (the token must carry the app_admin role). */
export async function signUpAdmin(stack: PaymentsStack, label = 'admin'): Promise<Person> {
  const person = await signUp(stack, label);
  await grantAdmin(stack.db.ownerUrl, person.email);
  const login = await stack.graphql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, { i: { email: person.email, password: PASSWORD } });
  if (!login.data?.login) throw new Error(`login failed: ${JSON.stringify(login.errors)}`);
  return { ...person, token: login.data.login.accessToken };
}

export async function addBankAccount(stack: PaymentsStack, person: Person): Promise<string> {
  const added = await stack.graphql(
    `mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId } } }`,
    { i: { accountHolder: 'Thandi Person', bankName: 'FNB', branchCode: '250655', accountNumber: '62000123456', accountType: 'cheque' } },
    person.token,
  );
  if (!added.data?.addBankAccount) throw new Error(`addBankAccount failed: ${JSON.stringify(added.errors)}`);
  return added.data.addBankAccount.result.rowId;
}

export async function requestWithdrawal(stack: PaymentsStack, person: Person, bankAccountId: string, amount: number | string, key = `wd-${Math.random()}`) {
  return stack.graphql(
    `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { ${WITHDRAWAL_FIELDS} } } }`,
    { i: { walletId: person.walletId, amount: String(amount), bankAccountId, idempotencyKey: key } },
    person.token,
  );
}

export const REFUND_FIELDS = 'rowId depositId status amount currency reason byAdmin failureReason';

export async function refundDeposit(stack: PaymentsStack, person: Person, depositId: string, amount: number | string, key = `rf-${Math.random()}`, reason = 'changed my mind') {
  return stack.graphql(
    `mutation($i: RefundDepositInput!) { refundDeposit(input: $i) { result { ${REFUND_FIELDS} } } }`,
    { i: { depositId, amount: String(amount), reason, idempotencyKey: key } },
    person.token,
  );
}

export async function refundRow(stack: PaymentsStack, id: string) {
  const { rows } = await stack.owner.query(`select * from app_public.refunds where id = $1`, [id]);
  return rows[0];
}

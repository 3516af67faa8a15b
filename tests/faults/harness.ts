// The fault-injection harness (issue 6, docs/faults.md): PostgreSQL, the Revio
// sandbox, the API and the worker as separate processes; a seeded random mix
// of deposits, transfers, withdrawals and replays at a set concurrency; faults
// on a schedule; then settle, fuzz, and check the bank invariants against the
// ledger, the sandbox's own state and the model kept here.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { generatePrivateJwk } from '../../src/auth/keys.ts';
import { loadLocalSecrets, localUrls, startLocalDatabase } from '../../src/db/local.ts';
import { graphileMigrate, migrate } from '../../src/db/migrate.ts';
import { makeLogger } from '../../src/logger.ts';
import { generateBankAccountKey } from '../../src/payments/bank-crypto.ts';
import { createRevioClient, type RevioClient } from '../../src/revio/index.ts';
import { readStateFile } from '../../src/revio-sandbox/store.ts';
import { installWorkerSchema } from '../../src/worker/runner.ts';
import { commerceLoad } from './commerce.ts';
import { fuzz, type FuzzReport } from './fuzz.ts';
import { freePort, Managed, postgresBinary, sleep } from './processes.ts';
import { rng, type Rng } from './random.ts';

export interface FaultOptions {
  seed: number;
  users: number;
  concurrency: number;
  /** Load duration. */
  durationMs: number;
  /** Gap between scheduled faults. */
  faultEveryMs: number;
  settleTimeoutMs: number;
  fuzzCases: number;
  /** Liveness: the fewest acknowledged operations of each kind (and consistent reads) the run must reach. */
  minimumPerKind: number;
  /** Print progress and the per-interval throughput lines. */
  verbose: boolean;
  keepDir: boolean;
  log: (line: string) => void;
}

export interface FaultResult {
  ok: boolean;
  seed: number;
  violations: string[];
  report: string;
}

const PASSWORD = 'correct horse battery';
const GOOD_ACCOUNT = '62000123456';
const FAILING_ACCOUNT = '910000001';
const SANDBOX_KEY = 'revio-sandbox-secret-key';
const SANDBOX_BRAND = '2f8e9a4c-5b1d-4e7a-9c3f-0d6b8a1e7c55';
const FINAL_DEPOSIT = new Set(['paid', 'failed', 'cancelled', 'expired']);
const FINAL_WITHDRAWAL = new Set(['paid', 'failed', 'cancelled']);
/** The workers' WORKER_STALE_AFTER_SECONDS: a worker silent this long is dead and its jobs are freed. */
const STALE_AFTER_SECONDS = 10;

interface User {
  index: number;
  email: string;
  token: string;
  userId: string;
  walletId: string;
  goodBank: string;
  failingBank: string;
  /** What we think is available (optimistic; the server has the last word). */
  estimate: number;
}

type Kind = 'deposit' | 'transfer' | 'withdrawal' | 'replay';
type Outcome = 'ok' | 'rejected' | 'uncertain' | 'unavailable';

/** One money-moving request and what we know of it. */
interface Op {
  id: number;
  kind: 'deposit' | 'transfer' | 'withdrawal';
  key: string;
  user: User;
  to?: User;
  amount: number;
  failing?: boolean;
  input: Record<string, unknown>;
  outcome: Outcome;
  rowId?: string;
  /** deposit: what we did at checkout. */
  fate?: 'paid' | 'failed' | 'abandoned' | 'pay-uncertain';
}

/** A refund, a cancellation or a chargeback of an earlier operation (issue 10). */
interface LifecycleOp {
  kind: 'refund' | 'cancel-deposit' | 'cancel-withdrawal' | 'chargeback';
  user: User;
  target: Op;
  key?: string;
  amount?: number;
  outcome: Outcome;
}

/** A user-balance effect: certain (acknowledged) or uncertain (response lost: zero or once). */
interface Effect {
  user: User;
  delta: number;
  certain: boolean;
  /** The request behind it (commerce requests too: tests/faults/commerce.ts). */
  op: Pick<Op, 'key' | 'rowId' | 'outcome'> & { kind: string; fate?: string };
}

class Stats {
  ops = new Map<string, number>();
  faults = new Map<string, number>();
  latencies: number[] = [];
  intervals: { at: number; ops: number; p99: number }[] = [];
  #window: number[] = [];
  count(kind: string, outcome: string) {
    const key = `${kind}\t${outcome}`;
    this.ops.set(key, (this.ops.get(key) ?? 0) + 1);
  }
  fault(name: string) {
    this.faults.set(name, (this.faults.get(name) ?? 0) + 1);
  }
  latency(ms: number) {
    this.latencies.push(ms);
    this.#window.push(ms);
  }
  flushInterval(at: number) {
    const window = this.#window;
    this.#window = [];
    this.intervals.push({ at, ops: window.length, p99: percentile(window, 0.99) });
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);
}

class TransportError extends Error {
  refused: boolean;
  constructor(message: string, refused: boolean) {
    super(message);
    this.refused = refused;
  }
}

interface GqlResult {
  status: number;
  data?: any;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function runFaults(options: FaultOptions): Promise<FaultResult> {
  const { log } = options;
  const random = rng(options.seed);
  const stats = new Stats();
  const violations: string[] = [];
  const violation = (message: string) => {
    violations.push(message);
    log(`VIOLATION: ${message}`);
  };
  const startedAt = Date.now();
  const elapsed = () => ((Date.now() - startedAt) / 1000).toFixed(1);
  const progress = (line: string) => {
    if (options.verbose) log(`[${elapsed()} s] ${line}`);
  };

  // ---- PostgreSQL: bootstrap once with the project's own code, then run the postmaster ourselves.
  const root = mkdtempSync(join(tmpdir(), 'pgwallet-faults-'));
  chmodSync(root, 0o711);
  const dataDir = join(root, 'data');
  const pgPort = await freePort();
  progress(`bootstrapping PostgreSQL in ${dataDir}`);
  const local = await startLocalDatabase(dataDir, pgPort);
  await migrate(local.databaseUrl);
  // Work in progress in migrations/current.sql too, as tests/global-setup.ts does.
  if (!process.env.TEST_COMMITTED_ONLY) await graphileMigrate(['watch', '--once'], { databaseUrl: local.databaseUrl });
  await installWorkerSchema(local.databaseUrl, makeLogger('silent'));
  await sleep(500); // let the bootstrap's pools close their idle connections first
  await local.stop();
  const urls = localUrls({ url: (db) => `postgres://postgres:${encodeURIComponent(loadLocalSecrets(dataDir).superuserPassword)}@127.0.0.1:${pgPort}/${db}` }, loadLocalSecrets(dataDir));
  const bin = postgresBinary();
  const postgres = new Managed('postgres', join(root, 'postgres.log'), /ready to accept connections/, () => ({
    command: bin.postgres,
    args: ['-D', join(dataDir, 'postgres'), '-p', String(pgPort), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    env: { ...process.env, LC_MESSAGES: 'C' },
    uid: bin.uid,
    gid: bin.gid,
  }));

  // ---- Shared settings for the API, the worker and the sandbox.
  const [apiPort, api2Port, sandboxPort] = [await freePort(), await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const apiUrls = [apiUrl, `http://127.0.0.1:${api2Port}`];
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const sandboxKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const sandboxStateFile = join(root, 'revio-sandbox.json');
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PGWALLET_DATA_DIR: dataDir,
    BANK_ACCOUNT_ENCRYPTION_KEY: generateBankAccountKey(),
    REVIO_API_URL: `${sandboxUrl}/api/v1/`,
    REVIO_API_KEY: SANDBOX_KEY,
    REVIO_BRAND_ID: SANDBOX_BRAND,
    REVIO_TIMEOUT_MS: '1500',
    REVIO_JOB_MAX_ATTEMPTS: '6',
    REVIO_QUICK_RETRIES: '4',
    REVIO_RETRY_BASE_MS: '100',
    // Above the sandbox's 2 s hangs and its pauses under load, so a late-landing call is waited for.
    REVIO_INFLIGHT_GRACE_MS: '8000',
    RECONCILIATION_MIN_AGE_SECONDS: '1',
    WITHDRAWAL_DAILY_LIMIT_CENTS: '1000000000',
    // The model spends a deposit as soon as it is credited (clearing is tested in payments-lifecycle).
    DEPOSIT_CLEARING_SECONDS: '0',
  };
  delete common.DATABASE_URL;
  delete common.AUTH_DATABASE_URL;
  delete common.ROOT_DATABASE_URL;
  const sandbox = new Managed('sandbox', join(root, 'sandbox.log'), /Revio sandbox ready/, () => ({
    command: process.execPath,
    args: ['src/revio-sandbox/main.ts'],
    env: {
      ...common,
      REVIO_SANDBOX_PORT: String(sandboxPort),
      REVIO_SANDBOX_STATE_FILE: sandboxStateFile,
      REVIO_SANDBOX_PRIVATE_KEY: sandboxKeyPem,
      REVIO_SANDBOX_TIME_SCALE: '0.001',
      REVIO_SANDBOX_DELIVERY_TIMEOUT_MS: '3000',
      REVIO_SANDBOX_PAYOUT_AUTO_COMPLETE_MS: '300',
      REVIO_SANDBOX_FAULTS: JSON.stringify({ webhooks: { duplicateRate: 0.2, outOfOrderWindowMs: 100 } }),
    },
  }));
  const jwk = await generatePrivateJwk();
  const apiProcess = (name: string, port: number) => new Managed(name, join(root, `${name}.log`), /pgwallet is ready/, () => ({
    command: process.execPath,
    args: ['src/main.ts'],
    env: {
      ...common,
      PORT: String(port),
      DATABASE_URL: urls.databaseUrl,
      AUTH_DATABASE_URL: urls.authDatabaseUrl,
      JWT_PRIVATE_JWK: jwk,
      ACCESS_TOKEN_TTL_SECONDS: '86400',
      IN_PROCESS_WORKER: 'false',
      RATE_LIMIT_PER_IP: '0',
      RATE_LIMIT_PER_USER: '0',
      RATE_LIMIT_AUTH_PER_IP: '0',
      RATE_LIMIT_MONEY_PER_USER: '0',
      METRICS_LEDGER_CHECK_INTERVAL_SECONDS: '0',
    },
  }));
  // Two of each, as behind a load balancer: the clients alternate between the APIs, the workers share the queue.
  const api = apiProcess('api', apiPort);
  const api2 = apiProcess('api2', api2Port);
  const workerProcess = (name: string) => new Managed(name, join(root, `${name}.log`), /worker is running/, () => ({
    command: process.execPath,
    args: ['src/worker/main.ts'],
    env: { ...common, WORKER_DATABASE_URL: urls.workerDatabaseUrl, WORKER_METRICS_PORT: '0', WORKER_CONCURRENCY: '4', WORKER_STALE_AFTER_SECONDS: String(STALE_AFTER_SECONDS) },
  }));
  const worker = workerProcess('worker');
  const worker2 = workerProcess('worker2');
  const apis = [api, api2];
  const workers = [worker, worker2];
  const processes = [postgres, sandbox, api, api2, worker, worker2];

  const owner = new pg.Pool({ connectionString: urls.databaseUrl, max: 6, connectionTimeoutMillis: 5_000 });
  owner.on('error', () => undefined);
  /** Owner SQL that waits out PostgreSQL restarts. */
  const sql = async <T = any>(text: string, params: unknown[] = [], attempts = 60): Promise<T[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await owner.query(text, params)).rows as T[];
      } catch (error) {
        if (attempt >= attempts) throw error;
        await sleep(250);
      }
    }
  };
  const revio: RevioClient = createRevioClient({ baseUrl: `${sandboxUrl}/api/v1/`, apiKey: SANDBOX_KEY, brandId: SANDBOX_BRAND, timeoutMs: 5_000 });

  const memory: { at: string; [name: string]: string }[] = [];
  /** Every RSS reading, per process incarnation (name and pid), for the growth check. */
  const rssReadings: { name: string; pid: number; at: number; mb: number }[] = [];
  const sampleMemory = (at: string, record = true) => {
    const row: { at: string; [name: string]: string } = { at };
    for (const p of processes) {
      const pid = p.pid;
      if (!pid) continue;
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const rss = /VmRSS:\s+(\d+)/.exec(status);
        if (rss) {
          row[p.name] = `${Math.round(Number(rss[1]) / 1024)} MB`;
          rssReadings.push({ name: p.name, pid, at: Date.now(), mb: Number(rss[1]) / 1024 });
        }
      } catch {
        // gone
      }
    }
    if (record) memory.push(row);
  };

  let report = '';
  try {
    await postgres.start();
    await sandbox.start();
    // One webhook per API: every event arrives twice, at two processes at once.
    for (const url of apiUrls) await revio.createWebhook({ title: 'pgwallet faults', callback: `${url}/webhooks/revio`, allEvents: true });
    // (A slow first answer could register a webhook twice: that only duplicates deliveries, which the product dedupes.)
    for (const w of workers) await w.start();
    for (const a of apis) await a.start();
    progress('all six processes are up');

    // ---- HTTP to the API (alternating between the two).
    let requestCount = 0;
    const graphql = async (query: string, variables: Record<string, unknown>, token?: string): Promise<GqlResult> => {
      const started = performance.now();
      let response: Response;
      try {
        response = await fetch(`${apiUrls[requestCount++ % apiUrls.length]}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ query, variables }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        throw new TransportError((error as Error).message, cause?.code === 'ECONNREFUSED');
      }
      let body: any;
      try {
        body = await response.json();
      } catch (error) {
        throw new TransportError(`unreadable response ${response.status}: ${(error as Error).message}`, false);
      } finally {
        stats.latency(performance.now() - started);
      }
      return { status: response.status, ...body };
    };
    /** For setup: retries until the call answers without a transport error or a 5xx. */
    const graphqlSure = async (query: string, variables: Record<string, unknown>, token?: string): Promise<GqlResult> => {
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await graphql(query, variables, token);
          if (result.status < 500 && !result.errors?.some((e) => e.extensions?.code === 'INTERNAL_ERROR')) return result;
          if (attempt > 40) return result;
        } catch (error) {
          if (attempt > 40) throw error;
        }
        await sleep(250);
      }
    };
    const sandboxPost = async (path: string, body: object = {}) => {
      const response = await fetch(`${sandboxUrl}${path}`, { method: path.includes('faults') ? 'PATCH' : 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
      if (!response.ok) throw new Error(`sandbox ${path}: ${response.status} ${await response.text()}`);
      return response.json();
    };

    // ---- Users: register, bank accounts (one good, one that Revio rejects), a first paid deposit.
    const users: User[] = [];
    const ops: Op[] = [];
    const effects: Effect[] = [];
    let opIds = 0;
    const depositMutation = 'mutation($i: CreateDepositInput!) { createDeposit(input: $i) { result { rowId status } } }';
    const transferMutation = 'mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }';
    const withdrawalMutation = 'mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { rowId status } } }';
    const refundMutation = 'mutation($i: RefundDepositInput!) { refundDeposit(input: $i) { result { rowId status } } }';
    const cancelDepositMutation = 'mutation($i: CancelDepositInput!) { cancelDeposit(input: $i) { result { rowId status } } }';
    const cancelWithdrawalMutation = 'mutation($i: CancelWithdrawalInput!) { cancelWithdrawal(input: $i) { result { rowId status } } }';
    const lifecycle: LifecycleOp[] = [];

    const purchaseOf = async (depositId: string, timeoutMs: number): Promise<string | undefined> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const rows = await sql<{ revio_purchase_id: string | null }>('select revio_purchase_id from app_public.deposits where id = $1', [depositId]).catch(() => []);
        if (rows[0]?.revio_purchase_id) return rows[0].revio_purchase_id;
        await sleep(100);
      }
      return undefined;
    };

    // The harness applies committed migrations only (as production does); email
    // verification arrives with a later one.
    const verification = (await sql(`select 1 from information_schema.columns
      where table_schema = 'app_public' and table_name = 'users' and column_name = 'email_verified_at'`)).length > 0;
    /** Registers (or, after a lost answer had registered us already, signs in); the token and user id. */
    const register = async (email: string, fullName: string): Promise<{ token: string; userId: string }> => {
      let registered = await graphqlSure('mutation($i: RegisterInput!) { register(input: $i) { accessToken user { rowId } } }', { i: { email, password: PASSWORD, fullName } });
      if (registered.errors?.[0]?.extensions?.code === 'EMAIL_TAKEN') {
        // A retry after a lost answer: the first attempt registered us. Sign in instead.
        const login = await graphqlSure('mutation($i: LoginInput!) { login(input: $i) { accessToken } }', { i: { email, password: PASSWORD } });
        const me = await graphqlSure('{ currentUser { rowId } }', {}, login.data?.login?.accessToken);
        registered = { status: 200, data: { register: { accessToken: login.data?.login?.accessToken, user: me.data?.currentUser } } };
      }
      if (!registered.data?.register?.user) throw new Error(`register ${email}: ${JSON.stringify(registered.errors)}`);
      return { token: registered.data.register.accessToken as string, userId: registered.data.register.user.rowId as string };
    };

    progress(`creating ${options.users} users`);
    await eachLimited(Array.from({ length: options.users }, (_, i) => i), 16, async (i) => {
      const email = `fault-${options.seed}-${i}@example.com`;
      const { token, userId } = await register(email, `Fault ${i}`);
      // Verified, as the emailed link would make it: these users receive transfers and withdraw.
      if (verification) await sql('update app_public.users set email_verified_at = now() where id = $1', [userId]);
      const wallets = await graphqlSure('{ allWallets { nodes { rowId currency } } }', {}, token);
      const walletId = wallets.data.allWallets.nodes.find((w: { currency: string }) => w.currency === 'ZAR').rowId as string;
      const bank = async (accountNumber: string) => {
        const added = await graphqlSure('mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId } } }', {
          i: { accountHolder: `Fault ${i}`, bankName: 'FNB', branchCode: '250655', accountNumber, accountType: 'cheque' },
        }, token);
        if (!added.data?.addBankAccount) throw new Error(`addBankAccount: ${JSON.stringify(added.errors)}`);
        return added.data.addBankAccount.result.rowId as string;
      };
      users[i] = { index: i, email, token, userId, walletId, goodBank: await bank(GOOD_ACCOUNT), failingBank: await bank(FAILING_ACCOUNT), estimate: 0 };
    });
    progress('funding every user with a first deposit');
    await eachLimited(users, 16, async (user) => {
      const amount = 50_000 + random.int(0, 50_000);
      const op: Op = { id: ++opIds, kind: 'deposit', key: `seed-${user.index}`, user, amount, input: { walletId: user.walletId, amount: String(amount), idempotencyKey: `seed-${user.index}` }, outcome: 'ok' };
      const created = await graphqlSure(depositMutation, { i: op.input }, user.token);
      if (!created.data?.createDeposit) throw new Error(`seed deposit: ${JSON.stringify(created.errors)}`);
      op.rowId = created.data.createDeposit.result.rowId;
      const purchase = await purchaseOf(op.rowId!, 120_000);
      if (!purchase) throw new Error(`seed deposit ${op.rowId} got no Revio purchase`);
      // Set-up must not fail on a slow machine: retry the payment until the purchase reads paid.
      for (let attempt = 1; ; attempt++) {
        const paid = await sandboxPost(`/_sandbox/purchases/${purchase}/pay`).then(() => true, () => false);
        if (paid || (await revio.getPurchase(purchase).catch(() => undefined))?.status === 'paid') break;
        if (attempt >= 10) throw new Error(`seed deposit ${op.rowId}: purchase ${purchase} could not be paid`);
        await sleep(500);
      }
      op.fate = 'paid';
      ops.push(op);
      effects.push({ user, delta: amount, certain: true, op });
      user.estimate += amount;
      stats.count('deposit', 'paid (setup)');
    });

    const commerce = commerceLoad({ seed: options.seed, users, graphql, graphqlSure, sql, count: (kind, outcome) => stats.count(kind, outcome), violation, register });
    progress('merchants and products');
    await commerce.setup();

    // ---- The load: a seeded mix of operations at the set concurrency.
    const classify = (result: GqlResult, field: string): { outcome: Outcome; code?: string } => {
      if (result.data?.[field]?.result) return { outcome: 'ok' };
      const code = result.errors?.[0]?.extensions?.code;
      if (result.status >= 500 || code === 'INTERNAL_ERROR' || !code) return { outcome: 'uncertain', code: code ?? `HTTP ${result.status}` };
      return { outcome: 'rejected', code };
    };
    const send = async (op: Op, mutation: string, field: string): Promise<{ outcome: Outcome; code?: string; rowId?: string }> => {
      try {
        const result = await graphql(mutation, { i: op.input }, op.user.token);
        const verdict = classify(result, field);
        return { ...verdict, rowId: result.data?.[field]?.result?.rowId };
      } catch (error) {
        return { outcome: (error as TransportError).refused ? 'unavailable' : 'uncertain', code: 'transport' };
      }
    };

    const doDeposit = async (r: Rng) => {
      const user = r.pick(users);
      const amount = r.int(1_000, 60_000);
      const key = `dep-${opIds + 1}-${r.int(0, 1e9)}`;
      const op: Op = { id: ++opIds, kind: 'deposit', key, user, amount, input: { walletId: user.walletId, amount: String(amount), idempotencyKey: key }, outcome: 'uncertain' };
      ops.push(op);
      const sent = await send(op, depositMutation, 'createDeposit');
      op.outcome = sent.outcome;
      if (sent.outcome !== 'ok') {
        stats.count('deposit', sent.outcome === 'rejected' ? `rejected ${sent.code}` : sent.outcome);
        return;
      }
      op.rowId = sent.rowId;
      const roll = r.next();
      op.fate = roll < 0.6 ? 'paid' : roll < 0.8 ? 'failed' : 'abandoned';
      if (op.fate === 'abandoned') return void stats.count('deposit', 'abandoned');
      const purchase = await purchaseOf(op.rowId!, 15_000);
      if (!purchase) {
        op.fate = 'abandoned';
        return void stats.count('deposit', 'abandoned (no checkout in time)');
      }
      try {
        await sandboxPost(`/_sandbox/purchases/${purchase}/${op.fate === 'paid' ? 'pay' : 'fail'}`);
      } catch {
        if (op.fate === 'paid') {
          op.fate = 'pay-uncertain';
          effects.push({ user, delta: amount, certain: false, op });
          return void stats.count('deposit', 'pay uncertain');
        }
      }
      if (op.fate === 'paid') {
        effects.push({ user, delta: amount, certain: true, op });
        user.estimate += amount;
      }
      stats.count('deposit', op.fate);
    };

    const doTransfer = async (r: Rng) => {
      const user = r.pick(users);
      let to = r.pick(users);
      if (to === user) to = users[(user.index + 1) % users.length];
      const amount = r.next() < 0.1 ? user.estimate + r.int(1, 10_000) : r.int(1, Math.max(1, Math.floor(user.estimate / 4)));
      const key = `tr-${opIds + 1}-${r.int(0, 1e9)}`;
      const op: Op = { id: ++opIds, kind: 'transfer', key, user, to, amount, input: { fromWalletId: user.walletId, toEmail: to.email, amount: String(amount), idempotencyKey: key }, outcome: 'uncertain' };
      ops.push(op);
      const sent = await send(op, transferMutation, 'transfer');
      op.outcome = sent.outcome;
      op.rowId = sent.rowId;
      if (sent.outcome === 'ok' || sent.outcome === 'uncertain') {
        const certain = sent.outcome === 'ok';
        effects.push({ user, delta: -amount, certain, op }, { user: to, delta: amount, certain, op });
        if (certain) {
          user.estimate -= amount;
          to.estimate += amount;
        }
      }
      stats.count('transfer', sent.outcome === 'rejected' ? `rejected ${sent.code}` : sent.outcome);
    };

    const doWithdrawal = async (r: Rng) => {
      const user = r.pick(users);
      const failing = r.next() < 0.25;
      const amount = r.next() < 0.05 ? user.estimate + 1_000 : r.int(1_000, Math.max(1_000, Math.min(20_000, Math.floor(user.estimate / 3))));
      const key = `wd-${opIds + 1}-${r.int(0, 1e9)}`;
      const op: Op = { id: ++opIds, kind: 'withdrawal', key, user, amount, failing, input: { walletId: user.walletId, amount: String(amount), bankAccountId: failing ? user.failingBank : user.goodBank, idempotencyKey: key }, outcome: 'uncertain' };
      ops.push(op);
      const sent = await send(op, withdrawalMutation, 'requestWithdrawal');
      op.outcome = sent.outcome;
      op.rowId = sent.rowId;
      if ((sent.outcome === 'ok' || sent.outcome === 'uncertain') && !failing) {
        effects.push({ user, delta: -amount, certain: sent.outcome === 'ok', op });
        if (sent.outcome === 'ok') user.estimate -= amount;
      }
      stats.count('withdrawal', `${failing ? 'to 910000001 ' : ''}${sent.outcome === 'rejected' ? `rejected ${sent.code}` : sent.outcome}`);
    };

    /** Sends a lifecycle mutation and classifies the answer. */
    const sendLifecycle = async (op: LifecycleOp, mutation: string, field: string, input: Record<string, unknown>) => {
      lifecycle.push(op);
      try {
        const verdict = classify(await graphql(mutation, { i: input }, op.user.token), field);
        op.outcome = verdict.outcome;
        stats.count(op.kind, verdict.outcome === 'rejected' ? `rejected ${verdict.code}` : verdict.outcome);
      } catch (error) {
        op.outcome = (error as TransportError).refused ? 'unavailable' : 'uncertain';
        stats.count(op.kind, op.outcome);
      }
    };

    /**
     * Refunds (40 %: part of a paid deposit), cancellations of abandoned deposits
     * (20 %) and of recent withdrawals (25 %, often too late: WITHDRAWAL_NOT_CANCELLABLE),
     * and chargebacks made by Revio through the sandbox (15 %). Their balance effects are
     * read back after settling (refund status, reversal debits, cancelled withdrawals);
     * the checks then prove none was applied twice or lost.
     */
    const doLifecycle = async (r: Rng) => {
      const roll = r.next();
      const paid = ops.filter((o) => o.kind === 'deposit' && o.fate === 'paid' && o.rowId);
      if (roll < 0.4) {
        if (paid.length === 0) return;
        const target = r.pick(paid);
        const amount = r.int(1, Math.max(1, Math.min(target.amount, Math.floor(target.user.estimate / 4))));
        const key = `rf-${++opIds}-${r.int(0, 1e9)}`;
        const op: LifecycleOp = { kind: 'refund', user: target.user, target, key, amount, outcome: 'uncertain' };
        await sendLifecycle(op, refundMutation, 'refundDeposit', { depositId: target.rowId, amount: String(amount), reason: 'fault run', idempotencyKey: key });
        if (op.outcome === 'ok') target.user.estimate -= amount;
      } else if (roll < 0.6) {
        const abandoned = ops.filter((o) => o.kind === 'deposit' && o.fate === 'abandoned' && o.rowId);
        if (abandoned.length === 0) return;
        const target = r.pick(abandoned);
        await sendLifecycle({ kind: 'cancel-deposit', user: target.user, target, outcome: 'uncertain' }, cancelDepositMutation, 'cancelDeposit', { depositId: target.rowId });
      } else if (roll < 0.85) {
        const recent = ops.filter((o) => o.kind === 'withdrawal' && o.outcome === 'ok' && o.rowId).slice(-8);
        if (recent.length === 0) return;
        const target = r.pick(recent);
        const op: LifecycleOp = { kind: 'cancel-withdrawal', user: target.user, target, outcome: 'uncertain' };
        await sendLifecycle(op, cancelWithdrawalMutation, 'cancelWithdrawal', { withdrawalId: target.rowId });
        if (op.outcome === 'ok' && !target.failing) target.user.estimate += target.amount;
      } else {
        // Revio's chargebacks come days after the payment: only deposits our
        // ledger has credited are charged back (one paid and charged back within
        // a second, its webhooks lost, is flagged for a person: revio_events.sql).
        const credited = new Set((await sql<{ id: string }>(`select id from app_public.deposits where status = 'paid' and id = any($1::uuid[])`,
          [paid.map((o) => o.rowId)], 1).catch(() => [] as { id: string }[])).map((d) => d.id));
        const chargeable = paid.filter((o) => credited.has(o.rowId!));
        if (chargeable.length === 0) return;
        const target = r.pick(chargeable);
        const purchase = await purchaseOf(target.rowId!, 1_000);
        if (!purchase) return;
        const op: LifecycleOp = { kind: 'chargeback', user: target.user, target, amount: r.int(1, target.amount), outcome: 'uncertain' };
        lifecycle.push(op);
        try {
          await sandboxPost(`/_sandbox/purchases/${purchase}/chargeback`, { amount: op.amount });
          op.outcome = 'ok';
          target.user.estimate -= op.amount!;
        } catch (error) {
          // 400: nothing left to charge back (refunded or charged back already); else the sandbox was down.
          op.outcome = /: 400 /.test((error as Error).message) ? 'rejected' : 'uncertain';
        }
        stats.count('chargeback', op.outcome);
      }
    };

    /** The same mutation with the same idempotency key: the first result again, nothing moved twice. */
    const doReplay = async (r: Rng) => {
      const candidates = ops.filter((o) => o.outcome === 'ok' || o.outcome === 'uncertain');
      if (candidates.length === 0) return;
      const op = r.pick(candidates);
      const mutation = op.kind === 'deposit' ? depositMutation : op.kind === 'transfer' ? transferMutation : withdrawalMutation;
      const field = op.kind === 'deposit' ? 'createDeposit' : op.kind === 'transfer' ? 'transfer' : 'requestWithdrawal';
      const sent = await send(op, mutation, field);
      if (sent.outcome === 'ok') {
        if (op.outcome === 'ok' && op.rowId && sent.rowId !== op.rowId) {
          violation(`replay of ${op.kind} ${op.key} returned ${sent.rowId}, the first request returned ${op.rowId}`);
        }
        if (op.outcome === 'uncertain') {
          // Now it happened exactly once: either before (this is its first result) or just now.
          op.outcome = 'ok';
          op.rowId = sent.rowId;
          for (const effect of effects) if (effect.op === op) effect.certain = true;
          if (op.kind === 'withdrawal' && op.failing) {
            // no balance effect
          }
          stats.count('replay', `${op.kind} resolved an uncertain one`);
          return;
        }
      } else if (sent.outcome === 'rejected' && op.outcome === 'ok') {
        violation(`replay of acknowledged ${op.kind} ${op.key} (${op.rowId}) was rejected with ${sent.code}`);
      } else if (sent.outcome === 'rejected' && op.outcome === 'uncertain') {
        // Not proof that nothing happened: the first request may still be on its
        // way (an API paused before it reached PostgreSQL) and take effect after
        // this refusal, which recorded nothing. It stays uncertain: zero or once.
        stats.count('replay', `${op.kind} uncertain one, replay rejected ${sent.code}`);
        return;
      }
      stats.count('replay', `${op.kind} ${sent.outcome === 'rejected' ? `rejected ${sent.code}` : sent.outcome}`);
    };

    // ---- Faults on a schedule, and reconciliation runs (as the cron would, more often).
    let loadRunning = true;
    const reconcile = () => sql(`select graphile_worker.add_job('revio.reconcile_pending', '{}'::json, job_key := 'faults-reconcile', max_attempts := 5)`, [], 4).catch(() => undefined);
    /** A fault knob must take effect (a knob left on — say every Revio call failing — would outlast the run): retried until the sandbox answers. */
    const patchFaults = async (body: object) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await sandboxPost('/_sandbox/faults', body);
        } catch (error) {
          if (attempt >= 20) return violation(`fault knob could not be set: ${(error as Error).message}`);
          log(`fault knob (try ${attempt}): ${(error as Error).message}`);
          await sleep(500);
        }
      }
    };
    const REVIO_OPS = ['createPurchase', 'getPurchase', 'listPurchases', 'createPayout', 'getPayout', 'listPayouts', 'executePayout'];
    const endpointFaults = (faults: object | null) => ({ endpoints: Object.fromEntries(REVIO_OPS.map((op) => [op, faults])) });
    /** Pauses every process of `p` (PostgreSQL: the postmaster and each backend) for `ms`, then resumes them. */
    const pause = async (p: Managed, ms: number, whole = false) => {
      const pids = whole ? p.tree() : p.pid ? [p.pid] : [];
      for (const pid of pids) try { process.kill(pid, 'SIGSTOP'); } catch { /* gone */ }
      try {
        await sleep(ms);
      } finally {
        for (const pid of pids) try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
      }
    };
    /** Starts a process again, retrying while the old one's remains are in the way (a killed postmaster's backends). */
    const restart = async (p: Managed, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          return await p.start();
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(500);
        }
      }
    };
    const waitForLockedJob = async () => {
      for (let i = 0; i < 20; i++) {
        const locked = await sql('select 1 from graphile_worker.jobs where locked_at is not null limit 1', [], 2).catch(() => []);
        if (locked.length) return;
        await sleep(50);
      }
    };
    type Target = 'postgres' | 'api' | 'worker' | 'sandbox';
    const faultSchedule: { name: string; target: Target; run: () => Promise<void> }[] = [
      {
        name: 'kill -9 a worker mid-job',
        target: 'worker',
        run: async () => {
          await waitForLockedJob(); // so the kill lands mid-job
          const w = random.pick(workers);
          await w.stop('SIGKILL');
          await sleep(random.int(200, 1500));
          await w.start();
        },
      },
      {
        name: 'kill -9 an API',
        target: 'api',
        run: async () => {
          const a = random.pick(apis);
          await a.stop('SIGKILL');
          await sleep(random.int(200, 1000));
          await a.start();
        },
      },
      { name: 'sandbox 503 window', target: 'sandbox', run: async () => {
        await patchFaults(endpointFaults({ errorRate: 0.5, errorStatus: 503, retryAfterSeconds: 0 }));
        await sleep(2_000);
        await patchFaults(endpointFaults(null));
      } },
      {
        name: 'PostgreSQL fast restart',
        target: 'postgres',
        run: async () => {
          await postgres.stop('SIGINT');
          await sleep(random.int(100, 1000));
          await restart(postgres);
        },
      },
      { name: 'SIGSTOP/SIGCONT an API (1-4 s)', target: 'api', run: () => pause(random.pick(apis), random.int(1_000, 4_000)) },
      { name: 'sandbox timeouts (lost responses) window', target: 'sandbox', run: async () => {
        await patchFaults(endpointFaults({ timeoutRate: 0.4, hangMs: 2_000, afterEffect: true }));
        await sleep(3_000);
        await patchFaults(endpointFaults(null));
      } },
      { name: 'SIGSTOP/SIGCONT a worker (1-4 s)', target: 'worker', run: async () => {
        await waitForLockedJob();
        await pause(random.pick(workers), random.int(1_000, 4_000));
      } },
      { name: 'webhooks dropped (reconciliation only)', target: 'sandbox', run: async () => {
        await patchFaults({ webhooks: { outage: { durationMs: 2_500, mode: 'drop' } } });
        await sleep(2_500);
      } },
      {
        name: 'PostgreSQL immediate restart',
        target: 'postgres',
        run: async () => {
          await postgres.stop('SIGQUIT');
          await sleep(random.int(100, 1000));
          await restart(postgres);
        },
      },
      { name: 'SIGSTOP/SIGCONT PostgreSQL, every process (1-4 s)', target: 'postgres', run: () => pause(postgres, random.int(1_000, 4_000), true) },
      { name: 'kill -9 the sandbox and restart it', target: 'sandbox', run: async () => {
        await sandbox.stop('SIGKILL');
        await sleep(random.int(200, 1000));
        await sandbox.start();
      } },
      { name: 'sandbox silent (webhooks delayed) window', target: 'sandbox', run: async () => {
        await patchFaults({ webhooks: { outage: { durationMs: 3_000, mode: 'delay' } } });
        await sleep(3_000);
      } },
      {
        name: 'kill -9 the postmaster alone (its backends orphaned)',
        target: 'postgres',
        run: async () => {
          await postgres.stop('SIGKILL');
          // Its backends notice and exit; until they have, a new postmaster refuses the data folder.
          await restart(postgres);
        },
      },
      { name: 'sandbox 500 on every Revio call window', target: 'sandbox', run: async () => {
        await patchFaults(endpointFaults({ errorRate: 1, errorStatus: 500 }));
        await sleep(1_500);
        await patchFaults(endpointFaults(null));
      } },
      {
        name: `worker paused past WORKER_STALE_AFTER_SECONDS (${STALE_AFTER_SECONDS + 3} s): its jobs move to the other worker, then it wakes`,
        target: 'worker',
        run: async () => {
          await waitForLockedJob();
          await pause(random.pick(workers), (STALE_AFTER_SECONDS + 3) * 1000);
        },
      },
    ];
    // Two faults on different targets at once (e.g. a worker killed during a PostgreSQL restart).
    const overlap = {
      name: 'overlapping faults (two at once)',
      target: 'api' as Target,
      run: async () => {
        // Never itself: once pushed below it is in faultSchedule, and picking it
        // nested two PostgreSQL faults at once (a fast restart while the killed
        // postmaster's orphaned backends still held the data folder).
        const single = (f: (typeof faultSchedule)[number]) => f !== overlap && !f.name.includes('past WORKER_STALE');
        const first = random.pick(faultSchedule.filter(single));
        const second = random.pick(faultSchedule.filter((f) => single(f) && f.target !== first.target));
        progress(`  overlapping: ${first.name} + ${second.name}`);
        await Promise.all([first.run(), sleep(random.int(0, 800)).then(second.run)]);
        stats.fault(first.name);
        stats.fault(second.name);
      },
    };
    faultSchedule.push(overlap);
    const allFaultsFired = () => faultSchedule.every((f) => (stats.faults.get(f.name) ?? 0) > 0);
    const faultLoop = (async () => {
      let next = random.int(0, faultSchedule.length - 1);
      await sleep(Math.min(options.faultEveryMs, 1_500));
      while (loadRunning) {
        const fault = faultSchedule[next % faultSchedule.length];
        next += 1;
        progress(`fault: ${fault.name}`);
        try {
          for (const p of processes) p.busy = true;
          await fault.run();
          stats.fault(fault.name);
        } catch (error) {
          violation(`fault "${fault.name}" could not be carried out or recovered from: ${(error as Error).message.slice(0, 500)}`);
        } finally {
          for (const p of processes) p.busy = false;
        }
        const until = Date.now() + options.faultEveryMs;
        while (loadRunning && Date.now() < until) await sleep(100);
      }
    })();
    const reconcileLoop = (async () => {
      while (loadRunning) {
        await reconcile();
        await sleep(2_000);
      }
    })();
    // Consistent reads during the load: each read is one snapshot (one statement, or one GraphQL
    // request), and what it shows must add up, whatever is being written meanwhile.
    const reads = { sql: 0, api: 0, skipped: 0 };
    const readLoop = (async () => {
      const r = rng(options.seed * 7 + 3);
      while (loadRunning) {
        await sleep(150);
        try {
          // All accounts per currency sum to zero; one wallet's stored balance and held equal its postings and open holds.
          const user = r.pick(users);
          const [row] = await sql(`
            select (select coalesce(jsonb_object_agg(currency, total), '{}') from (select currency, sum(balance)::text as total from ledger.accounts group by currency) t where total::numeric <> 0) as nonzero,
                   a.balance::text, a.held::text,
                   (select coalesce(sum(p.amount), 0)::text from ledger.postings p where p.account_id = a.id) as posted,
                   (select coalesce(sum(h.amount), 0)::text from ledger.holds h where h.account_id = a.id and h.status = 'placed') as holding
              from ledger.accounts a where a.id = $1`, [user.walletId], 1);
          reads.sql += 1;
          if (Object.keys(row.nonzero).length > 0) violation(`read ${reads.sql}: accounts do not sum to zero in one snapshot: ${JSON.stringify(row.nonzero)}`);
          if (row.balance !== row.posted || row.held !== row.holding) violation(`read ${reads.sql}: wallet ${user.walletId} stores ${row.balance}/${row.held} but its postings say ${row.posted}, its open holds ${row.holding}`);
        } catch {
          reads.skipped += 1; // PostgreSQL down or paused: nothing to compare
        }
        try {
          // Through the API: the wallet's balance is the sum of its transaction list, and its last balanceAfter.
          const user = r.pick(users);
          const result = await graphql('{ allWallets { nodes { rowId balance heldBalance availableBalance transactions { totalCount nodes { amount sequence balanceAfter } } } } }', {}, user.token);
          const wallet = result.data?.allWallets?.nodes?.find((w: { rowId: string }) => w.rowId === user.walletId);
          if (!wallet) {
            reads.skipped += 1;
            continue;
          }
          reads.api += 1;
          const rows = wallet.transactions.nodes as { amount: string; sequence: string; balanceAfter: string }[];
          const sum = rows.reduce((total, t) => total + BigInt(t.amount), 0n);
          const last = rows.reduce((best, t) => (best === undefined || BigInt(t.sequence) > BigInt(best.sequence) ? t : best), undefined as (typeof rows)[number] | undefined);
          const problems = [
            sum !== BigInt(wallet.balance) && `transactions sum to ${sum}`,
            last && last.balanceAfter !== wallet.balance && `last balanceAfter ${last.balanceAfter}`,
            rows.length !== wallet.transactions.totalCount && `totalCount ${wallet.transactions.totalCount} for ${rows.length} rows`,
            BigInt(wallet.availableBalance) !== BigInt(wallet.balance) - BigInt(wallet.heldBalance) && `available ${wallet.availableBalance}`,
          ].filter(Boolean);
          if (problems.length) violation(`API read ${reads.api}: wallet ${user.walletId} balance ${wallet.balance} but ${problems.join(', ')}`);
        } catch {
          reads.skipped += 1;
        }
      }
    })();
    const intervalMs = Math.max(5_000, Math.min(60_000, Math.floor(options.durationMs / 10)));
    const monitorLoop = (async () => {
      let last = Date.now();
      while (loadRunning) {
        await sleep(250);
        // The restart policy (docker-compose: unless-stopped): a process that died by itself is started again.
        for (const p of processes) {
          if (!p.running && !p.busy) {
            p.busy = true;
            progress(`${p.name} crashed; restarting it`);
            stats.fault(`${p.name} crashed by itself, restarted`);
            await p.start().catch((error) => violation(`${p.name} would not restart: ${(error as Error).message.slice(0, 300)}`));
            p.busy = false;
          }
        }
        if (Date.now() - last >= intervalMs) {
          last = Date.now();
          stats.flushInterval(Math.round((Date.now() - startedAt) / 1000));
          sampleMemory('interval', false);
          const i = stats.intervals.at(-1)!;
          progress(`${i.ops} requests in the last ${intervalMs / 1000} s (${(i.ops / (intervalMs / 1000)).toFixed(1)}/s), p99 ${i.p99} ms`);
        }
      }
    })();

    sampleMemory('start of load');
    progress(`load: ${options.concurrency} clients for ${options.durationMs / 1000} s`);
    const loadStart = Date.now();
    const requestsBefore = stats.latencies.length;
    await Promise.all(Array.from({ length: options.concurrency }, async (_, client) => {
      const r = rng(options.seed * 1000 + client + 1);
      while ((Date.now() - loadStart < options.durationMs || !allFaultsFired()) && Date.now() - loadStart < options.durationMs * 8) {
        const roll = r.next();
        try {
          if (roll < 0.24) await doDeposit(r);
          else if (roll < 0.52) await doTransfer(r);
          else if (roll < 0.68) await doWithdrawal(r);
          else if (roll < 0.78) await doLifecycle(r);
          else if (roll < 0.86) await commerce.doPurchase(r);
          else if (roll < 0.92) await commerce.doReserve(r);
          else await doReplay(r);
        } catch (error) {
          stats.count('harness', `error ${(error as Error).message.slice(0, 60)}`);
        }
        if (!api.running && !api2.running) await sleep(100);
      }
    }));
    const loadSeconds = (Date.now() - loadStart) / 1000;
    const loadRequests = stats.latencies.length - requestsBefore;
    loadRunning = false;
    await Promise.all([faultLoop, reconcileLoop, monitorLoop, readLoop]);
    sampleMemory('end of load');

    // ---- Settle: faults off, every process up, open checkouts closed (expiry), jobs drained, reconciliation run.
    progress('settling');
    await patchFaults({ endpoints: Object.fromEntries(REVIO_OPS.map((op) => [op, null])), webhooks: { outage: null } });
    for (const p of processes) {
      if (!p.running) {
        stats.fault(`${p.name} found dead and restarted`);
        await p.start();
      }
    }
    const settleDeadline = Date.now() + options.settleTimeoutMs;
    let settled = false;
    let openRows: any[] = [];
    while (Date.now() < settleDeadline) {
      // Checkouts nobody will pay are closed, as Revio's expiry would.
      const open = await sql<{ revio_purchase_id: string }>(`select revio_purchase_id from app_public.deposits where status = 'awaiting_payment' and revio_purchase_id is not null`);
      await eachLimited(open, 8, async ({ revio_purchase_id }) => {
        const purchase = await revio.getPurchase(revio_purchase_id).catch(() => undefined);
        if (purchase && purchase.status !== 'paid' && purchase.status !== 'cancelled') await revio.cancelPurchase(revio_purchase_id).catch(() => undefined);
      });
      // No unlocking and no rescheduling here: jobs a killed worker held are
      // freed by the product (worker heartbeats, docs/runbook.md "Stale job
      // locks"), and retries wait out their own backoff.
      await reconcile();
      openRows = await sql(`
        select 'deposit' as kind, id, status::text from app_public.deposits where status not in ('paid','failed','cancelled','expired') and not needs_attention
        union all
        select 'withdrawal', id, status::text from app_public.withdrawals where status not in ('paid','failed','cancelled') and not needs_attention
        union all
        select 'refund', id, status::text from app_public.refunds where status in ('requested','submitted') and not needs_attention
        union all
        select 'order', id, status::text from app_public.orders where status in ('reserved', 'awaiting_payment')`);
      const jobs = await sql<{ n: string }>(`select count(*) as n from graphile_worker.jobs where attempts < max_attempts and task_identifier <> 'revio.reconcile_pending'`);
      if (openRows.length === 0 && Number(jobs[0].n) === 0) {
        settled = true;
        break;
      }
      await sleep(1_000);
    }
    // Sandbox deliveries still in flight (retries) must land before we compare.
    await sleep(1_500);
    await reconcile();
    await sleep(1_500);
    // The daily check, as its cron would: it reports refunds and chargebacks whose webhooks never came.
    await sql(`select graphile_worker.add_job('revio.reconcile_daily', '{}'::json, job_key := 'faults-daily', max_attempts := 3)`).catch(() => undefined);
    for (let i = 0; i < 120; i++) {
      const pending = await sql(`select 1 from graphile_worker.jobs where key = 'faults-daily' and attempts < max_attempts`).catch(() => [1]);
      if (pending.length === 0) break;
      await sleep(1_000);
    }
    progress(settled ? 'settled' : 'settle timed out');
    if (!settled) {
      const waiting = await sql(`select task_identifier, count(*)::int as n, max(attempts) as attempts, max(last_error) as last_error from graphile_worker.jobs
                                  where attempts < max_attempts and task_identifier <> 'revio.reconcile_pending' group by 1`).catch(() => []);
      violation(`not settled within ${options.settleTimeoutMs / 1000} s: ${openRows.length} deposits/withdrawals neither final nor flagged, e.g. ${JSON.stringify(openRows.slice(0, 3))}; jobs waiting: ${JSON.stringify(waiting)}`);
    }

    // ---- Hostile input: nothing recorded, no 5xx, stable codes.
    const before = await sql(`select (select count(*) from ledger.entries) as entries, (select count(*) from app_public.deposits) as deposits, (select count(*) from app_public.withdrawals) as withdrawals, (select count(*) from app_public.bank_accounts) as banks`);
    const fuzzReport: FuzzReport = await fuzz({ apiUrl, seed: options.seed, cases: options.fuzzCases, users: users.slice(0, 3), signingKeyPem: sandboxKeyPem, knownPurchase: ops.find((o) => o.fate === 'paid')?.rowId, sql });
    for (const v of fuzzReport.violations) violation(`fuzz: ${v}`);
    const after = await sql(`select (select count(*) from ledger.entries) as entries, (select count(*) from app_public.deposits) as deposits, (select count(*) from app_public.withdrawals) as withdrawals, (select count(*) from app_public.bank_accounts) as banks`);
    if (JSON.stringify(before) !== JSON.stringify(after)) violation(`fuzz: hostile input recorded something: before ${JSON.stringify(before[0])}, after ${JSON.stringify(after[0])}`);
    if (!api.running || !api2.running) violation('fuzz: an API process died');

    // ---- The checks.
    const checks: { name: string; failures: string[] }[] = [];
    const check = (name: string, failures: string[]) => {
      checks.push({ name, failures });
      for (const f of failures.slice(0, 10)) violation(`${name}: ${f}`);
      if (failures.length > 10) violation(`${name}: … and ${failures.length - 10} more`);
    };
    check('trial balance is zero per currency', (await sql(`select currency, net_balance::text from audit.trial_balance where net_balance <> 0`)).map((r) => `${r.currency} nets to ${r.net_balance}`));
    check('no balance drift', (await sql(`select account_id, kind, stored_balance::text, posted_balance::text, stored_held::text, open_holds::text from audit.balance_drift`)).map((r) => JSON.stringify(r)));
    check('no unbalanced entries', (await sql(`select * from audit.unbalanced_entries`)).map((r) => JSON.stringify(r)));
    check('no negative available balance', (await sql(`select id, balance::text, held::text from ledger.accounts where kind = 'user_wallet' and balance - held < 0`)).map((r) => `wallet ${r.id}: balance ${r.balance}, held ${r.held}`));

    // The snapshot and its journal, as the running sandbox has them (src/revio-sandbox/store.ts).
    const state = readStateFile(sandboxStateFile) as unknown as { purchases: Record<string, any>; payouts: Record<string, any> };
    const deposits = await sql(`select d.id, d.status::text, d.amount::text, d.revio_purchase_id, d.credit_entry_id, d.needs_attention,
                                       (select count(*) from ledger.postings p where p.entry_id = d.credit_entry_id and p.account_id = d.wallet_id) as credits
                                  from app_public.deposits d`);
    const depositByPurchase = new Map(deposits.filter((d) => d.revio_purchase_id).map((d) => [d.revio_purchase_id, d]));
    // Paid, and perhaps refunded or charged back since (those are checked below).
    const WAS_PAID = new Set(['paid', 'refunded', 'pending_refund', 'chargeback']);
    const paidPurchases = Object.values(state.purchases).filter((p) => WAS_PAID.has(p.status));
    check('every purchase the sandbox marked paid is credited exactly once', paidPurchases.flatMap((p) => {
      const d = depositByPurchase.get(p.id);
      if (!d) return [`paid purchase ${p.id} (reference ${p.reference}) has no deposit`];
      if (d.status !== 'paid' || Number(d.credits) !== 1) return [`paid purchase ${p.id}: deposit ${d.id} is ${d.status} with ${d.credits} credit postings`];
      if (String(p.purchase.total) !== d.amount) return [`paid purchase ${p.id} of ${p.purchase.total}: deposit ${d.id} is for ${d.amount}`];
      return [];
    }).concat(deposits.filter((d) => d.status === 'paid' && !WAS_PAID.has(state.purchases[d.revio_purchase_id]?.status)).map((d) => `deposit ${d.id} is paid but its purchase ${d.revio_purchase_id} is ${state.purchases[d.revio_purchase_id]?.status}`)));

    const withdrawals = await sql(`select w.id, w.status::text, w.amount::text, w.revio_payout_id, w.needs_attention, h.status::text as hold_status
                                     from app_public.withdrawals w left join ledger.holds h on h.id = w.hold_id`);
    const withdrawalByPayout = new Map(withdrawals.filter((w) => w.revio_payout_id).map((w) => [w.revio_payout_id, w]));
    const successPayouts = Object.values(state.payouts).filter((p) => p.status === 'success');
    const perReference = new Map<string, number>();
    for (const p of successPayouts) perReference.set(p.reference, (perReference.get(p.reference) ?? 0) + 1);
    check('every executed payout matches exactly one paid withdrawal; none paid twice', [
      ...successPayouts.flatMap((p) => {
        const w = withdrawalByPayout.get(p.id);
        if (!w) return [`payout ${p.id} (reference ${p.reference}) succeeded at Revio but no withdrawal points at it`];
        if (w.status !== 'paid') return [`payout ${p.id} succeeded but withdrawal ${w.id} is ${w.status}`];
        return [];
      }),
      ...[...perReference].filter(([, n]) => n > 1).map(([reference, n]) => `withdrawal ${reference} was paid out ${n} times at Revio`),
      ...withdrawals.filter((w) => w.status === 'paid' && state.payouts[w.revio_payout_id]?.status !== 'success').map((w) => `withdrawal ${w.id} is paid but payout ${w.revio_payout_id} is ${state.payouts[w.revio_payout_id]?.status}`),
    ]);
    check("every failed withdrawal's hold was released", withdrawals.filter((w) => w.status === 'failed' && w.hold_status !== 'released').map((w) => `withdrawal ${w.id} failed but its hold is ${w.hold_status}`));
    check('every deposit and withdrawal is final or flagged', [
      ...deposits.filter((d) => !FINAL_DEPOSIT.has(d.status) && !d.needs_attention).map((d) => `deposit ${d.id} is ${d.status}`),
      ...withdrawals.filter((w) => !FINAL_WITHDRAWAL.has(w.status) && !w.needs_attention).map((w) => `withdrawal ${w.id} is ${w.status}`),
    ]);

    // ---- Refunds, chargebacks and cancellations (issue 10).
    const refunds = await sql(`select r.id, r.idempotency_key, r.status::text, r.amount::text, r.needs_attention, h.status::text as hold_status
                                 from app_public.refunds r left join ledger.holds h on h.id = r.hold_id`);
    check('every refund is final or flagged', refunds.filter((x) => (x.status === 'requested' || x.status === 'submitted') && !x.needs_attention).map((x) => `refund ${x.id} is ${x.status}`));
    check("every failed refund's hold was released", refunds.filter((x) => x.status === 'failed' && x.hold_status !== 'released').map((x) => `refund ${x.id} failed but its hold is ${x.hold_status}`));
    check("every cancelled withdrawal's hold was released and nothing was paid out",
      withdrawals.filter((w) => w.status === 'cancelled' && (w.hold_status !== 'released' || w.revio_payout_id)).map((w) => `withdrawal ${w.id} cancelled: hold ${w.hold_status}, payout ${w.revio_payout_id}`));
    const sandboxPayments = Object.values((state as { payments?: Record<string, any> }).payments ?? {}) as { payment_type: string; amount: number; related_to: { id: string } }[];
    const takenBack = new Map<string, number>();
    for (const p of sandboxPayments) takenBack.set(p.related_to.id, (takenBack.get(p.related_to.id) ?? 0) + p.amount);
    const depositMoney = await sql(`select d.id, d.revio_purchase_id, d.refunded_amount::text, d.reversed_amount::text,
                                           (select coalesce(sum(r.amount), 0) from app_public.refunds r where r.deposit_id = d.id and r.status = 'succeeded')::text as refunds_succeeded,
                                           exists (select from app_private.revio_deliveries v where v.deposit_id = d.id and v.outcome = 'review')
                                             or exists (select from app_public.refunds r where r.deposit_id = d.id and r.needs_attention)
                                             or exists (select from app_private.revio_discrepancies x where x.deposit_id = d.id and x.resolved_at is null) as told_a_person
                                      from app_public.deposits d where d.revio_purchase_id is not null`);
    check('every refund and chargeback Revio made is applied exactly once (none twice, none silently lost)', depositMoney.flatMap((d) => {
      const revio = takenBack.get(d.revio_purchase_id) ?? 0;
      const ours = Number(d.refunded_amount) + Number(d.reversed_amount);
      const failures: string[] = [];
      if (d.refunded_amount !== d.refunds_succeeded) failures.push(`deposit ${d.id}: refunded_amount ${d.refunded_amount}, succeeded refunds ${d.refunds_succeeded}`);
      if (ours > revio) failures.push(`deposit ${d.id}: the ledger took back ${ours}, Revio only ${revio} (applied twice)`);
      if (ours < revio && !d.told_a_person) failures.push(`deposit ${d.id}: Revio took back ${revio}, the ledger ${ours}, and nobody was told`);
      return failures;
    }));
    // Their balance effects, read back: a refund debits once it succeeded (zero or once while it is
    // open and flagged), a chargeback debits what the wallet had, a cancelled withdrawal moved nothing.
    const refundByKey = new Map(refunds.map((x) => [x.idempotency_key, x]));
    for (const op of lifecycle) {
      if (op.kind !== 'refund') continue;
      const row = refundByKey.get(op.key);
      if (row && row.status !== 'failed') effects.push({ user: op.user, delta: -Number(row.amount), certain: row.status === 'succeeded', op: op.target });
    }
    for (const row of await sql(`select wallet_id, sum(debited_amount)::text as debited from app_public.reversals group by wallet_id`)) {
      const user = users.find((u) => u.walletId === row.wallet_id);
      const anchor = user && ops.find((o) => o.user === user && o.kind === 'deposit');
      if (user && anchor && Number(row.debited) > 0) effects.push({ user, delta: -Number(row.debited), certain: true, op: anchor });
    }
    const cancelled = new Set(withdrawals.filter((w) => w.status === 'cancelled').map((w) => w.id));
    for (let i = effects.length - 1; i >= 0; i--) {
      const effect = effects[i];
      if (effect.op.kind === 'withdrawal' && effect.op.rowId && cancelled.has(effect.op.rowId)) effects.splice(i, 1);
    }

    // Flagged withdrawals keep their money held: their effect is uncertain in the model.
    const withdrawalById = new Map(withdrawals.map((w) => [w.id, w]));
    for (const effect of effects) {
      if (effect.op.kind === 'withdrawal') {
        const w = effect.op.rowId ? withdrawalById.get(effect.op.rowId) : undefined;
        if (w?.needs_attention && w.status !== 'paid') effect.certain = false;
      }
    }
    // Purchases and confirmed reservations, from what their answers said.
    for (const effect of commerce.effects()) effects.push({ ...effect, user: effect.user as User });
    const balances = new Map((await sql(`select id, balance::text from ledger.accounts where kind = 'user_wallet'`)).map((r) => [r.id, Number(r.balance)]));
    const mismatched: User[] = [];
    check("each user's balance equals the model (uncertain operations at most once)", users.flatMap((user) => {
      const mine = effects.filter((e) => e.user === user);
      const expected = mine.filter((e) => e.certain).reduce((sum, e) => sum + e.delta, 0);
      const uncertain = mine.filter((e) => !e.certain).map((e) => e.delta);
      const actual = balances.get(user.walletId) ?? NaN;
      if (subsetSums(uncertain).has(actual - expected)) return [];
      mismatched.push(user);
      return [`${user.email}: balance ${actual}, model ${expected} plus a subset of [${uncertain.join(', ')}]`];
    }));
    // What a mismatch is made of: the model's effects and the ledger's postings, side by side.
    for (const user of mismatched) {
      log(`-- ${user.email} (wallet ${user.walletId}): the model's effects`);
      for (const e of effects.filter((x) => x.user === user)) log(`   ${e.certain ? 'certain  ' : 'uncertain'} ${String(e.delta).padStart(8)} ${e.op.kind} ${e.op.key} ${e.op.rowId ?? ''} ${e.op.outcome} ${e.op.fate ?? ''}`);
      log(`-- ${user.email}: the ledger's postings`);
      for (const row of await sql(`select e.kind::text, p.amount::text, e.memo, e.metadata::text, e.idempotency_ref from ledger.postings p join ledger.entries e on e.id = p.entry_id
                                    where p.account_id = $1 order by e.created_at`, [user.walletId])) {
        log(`   ${row.amount.padStart(8)} ${row.kind} ${row.idempotency_ref ?? ''} ${row.memo ?? ''} ${row.metadata}`);
      }
    }

    // Commerce: stock, orders and merchant wallets (issue 11).
    for (const [name, failures] of await commerce.checks()) check(name, failures);

    check('API, worker and sandbox never crashed (PostgreSQL restarts and pauses included)', processes.filter((p) => p !== postgres && p.unexpectedExits > 0)
      .map((p) => `${p.name} exited by itself ${p.unexpectedExits} time(s): ${p.stderrTail.slice(-300).replace(/\s+/g, ' ')}`));

    // Held money per wallet equals the model: the withdrawals still open (flagged ones keep their hold).
    const withdrawalRows = await sql(`select w.id, w.wallet_id, w.amount::text, w.status::text from app_public.withdrawals w`);
    const heldByWallet = new Map((await sql(`select id, held::text from ledger.accounts where kind = 'user_wallet'`)).map((r) => [r.id, BigInt(r.held)]));
    check("each wallet's held amount equals the model's open withdrawals", users.flatMap((user) => {
      const mine = ops.filter((o) => o.kind === 'withdrawal' && o.user === user);
      const rows = withdrawalRows.filter((w) => w.wallet_id === user.walletId);
      const failures: string[] = [];
      const unmatched = new Set(mine.filter((o) => !o.rowId && o.outcome === 'uncertain'));
      let expected = 0n;
      for (const row of rows) {
        const known = mine.find((o) => o.rowId === row.id);
        const op = known ?? [...unmatched].find((o) => String(o.amount) === row.amount);
        if (!op) failures.push(`${user.email}: withdrawal ${row.id} of ${row.amount} matches no request the clients sent`);
        else if (String(op.amount) !== row.amount) failures.push(`${user.email}: withdrawal ${row.id} is for ${row.amount}, the request was for ${op.amount}`);
        if (op && !known) unmatched.delete(op);
        if (!FINAL_WITHDRAWAL.has(row.status)) expected += BigInt(row.amount);
      }
      for (const op of mine.filter((o) => o.outcome === 'ok' && o.rowId)) {
        if (!rows.some((w) => w.id === op.rowId)) failures.push(`${user.email}: acknowledged withdrawal ${op.rowId} is not in the database`);
      }
      const held = heldByWallet.get(user.walletId) ?? -1n;
      if (held !== expected) failures.push(`${user.email}: held ${held}, open withdrawals ${expected}`);
      return failures;
    }));

    // Deposits' credits, counted by deposit id (the entry's metadata) and checked by amount and wallet.
    const credits = new Map((await sql(`
      select e.metadata->>'deposit_id' as deposit_id, count(distinct e.id) as entries,
             coalesce(sum(p.amount) filter (where p.account_id = d.wallet_id), 0)::text as credited
        from ledger.entries e
        join ledger.postings p on p.entry_id = e.id
        left join app_public.deposits d on d.id::text = e.metadata->>'deposit_id'
       where e.kind = 'deposit' and e.metadata ? 'deposit_id'
       group by 1`)).map((r) => [r.deposit_id, r]));
    check('each deposit is credited once if paid (by its id, for its amount), never otherwise', [
      ...deposits.flatMap((d) => {
        const c = credits.get(d.id);
        if (d.status === 'paid') {
          if (!c) return [`paid deposit ${d.id} has no credit entry`];
          if (Number(c.entries) !== 1 || c.credited !== d.amount) return [`paid deposit ${d.id} of ${d.amount}: ${c.entries} credit entries for ${c.credited}`];
          return [];
        }
        return c ? [`deposit ${d.id} is ${d.status} but was credited ${c.credited} in ${c.entries} entries`] : [];
      }),
      ...[...credits.keys()].filter((id) => !deposits.some((d) => d.id === id)).map((id) => `credit entry for unknown deposit ${id}`),
      ...ops.filter((o) => o.kind === 'deposit' && o.fate === 'paid' && o.rowId).flatMap((o) => {
        const d = deposits.find((x) => x.id === o.rowId);
        return d?.status === 'paid' && d.amount === String(o.amount) ? [] : [`deposit ${o.rowId} of ${o.amount} was paid at checkout but is ${d?.status} for ${d?.amount}`];
      }),
    ]);

    // Flagged payments and dead jobs: each must be explained by a fault this run injected.
    const fired = (pattern: RegExp) => [...stats.faults.keys()].filter((name) => pattern.test(name) && (stats.faults.get(name) ?? 0) > 0);
    const TRANSIENT = /sandbox|PostgreSQL|postmaster|worker|overlapping/;
    const explanations: [RegExp, RegExp, string][] = [
      [/gave up after \d+ attempts/, TRANSIENT, 'retries used up during outages'],
      [/died with its worker/, /kill -9 a worker|paused past/, 'its worker was killed on its last attempt'],
      [/Revio has \d+ payouts with reference|also names this (deposit|withdrawal)/, /paused past|timeouts/, 'a second Revio object: a lost response, or a job run by two workers'],
    ];
    const SANDBOX_OUTAGE = /sandbox|overlapping/;
    const flaggedRows = await sql(`select kind, id, status, attention_reason from audit.payments_needing_attention`);
    const explainedBy = new Map<string, number>();
    const explainedIds = new Set<string>();
    // Chargebacks are part of the load (the sandbox's chargeback action): the
    // deposit they hit is flagged for an admin's review by design.
    const chargedBack = new Set(lifecycle.filter((o) => o.kind === 'chargeback' && o.outcome !== 'rejected').map((o) => o.target.rowId));
    check('every flagged deposit or withdrawal is explained by an injected fault', flaggedRows.flatMap((row) => {
      if (row.kind === 'deposit' && chargedBack.has(row.id) && /charge/i.test(row.attention_reason ?? '')) {
        explainedIds.add(row.id);
        explainedBy.set('deposit: a chargeback the load made', (explainedBy.get('deposit: a chargeback the load made') ?? 0) + 1);
        return [];
      }
      const match = explanations.find(([reason]) => reason.test(row.attention_reason ?? ''));
      const faults = match ? fired(match[1]) : [];
      if (!match || faults.length === 0) return [`${row.kind} ${row.id} (${row.status}) flagged: ${row.attention_reason}`];
      explainedIds.add(row.id);
      explainedBy.set(`${row.kind}: ${match[2]}`, (explainedBy.get(`${row.kind}: ${match[2]}`) ?? 0) + 1);
      return [];
    }));
    const deadJobs = await sql(`select job_id, task, job_key, attempts, last_error, deposit_id, withdrawal_id from audit.dead_jobs`);
    check('every dead job is explained (its payment is flagged for a fault this run injected)', deadJobs.flatMap((job) => {
      const payment = job.deposit_id ?? job.withdrawal_id;
      if (/its worker stopped heartbeating/.test(job.last_error ?? '') && fired(/kill -9 a worker|paused past|overlapping/).length > 0) {
        explainedBy.set(`dead ${job.task}: killed with its worker on its last attempt`, (explainedBy.get(`dead ${job.task}: killed with its worker on its last attempt`) ?? 0) + 1);
        return [];
      }
      // PostgreSQL went away while the attempt ran, so graphile-worker could not
      // record its outcome; the heartbeat release counted the attempt (sql/worker/heartbeats.sql).
      if (/ended without its outcome being recorded/.test(job.last_error ?? '') && !payment && fired(TRANSIENT).length > 0) {
        explainedBy.set(`dead ${job.task}: outcome lost in an outage`, (explainedBy.get(`dead ${job.task}: outcome lost in an outage`) ?? 0) + 1);
        return [];
      }
      if (job.task === 'revio.reconcile_pending' && /Revio answered none/.test(job.last_error ?? '') && fired(SANDBOX_OUTAGE).length > 0) {
        explainedBy.set('dead revio.reconcile_pending: Revio unreachable for all its attempts', (explainedBy.get('dead revio.reconcile_pending: Revio unreachable for all its attempts') ?? 0) + 1);
        return [];
      }
      if (payment && explainedIds.has(payment)) {
        explainedBy.set(`dead ${job.task}: its payment is flagged`, (explainedBy.get(`dead ${job.task}: its payment is flagged`) ?? 0) + 1);
        return [];
      }
      return [`dead job ${job.job_id} ${job.task} (${job.job_key}) after ${job.attempts} attempts: ${String(job.last_error).slice(0, 200)}`];
    }));

    // Liveness: enough acknowledged work of every kind, and every fault injected at least once.
    const acknowledged = (kind: string, pattern: RegExp) => [...stats.ops].filter(([key]) => key.startsWith(`${kind}\t`) && pattern.test(key.split('\t')[1])).reduce((n, [, v]) => n + v, 0);
    const minimum = options.minimumPerKind;
    const liveness: [string, number][] = [
      ['deposits paid', acknowledged('deposit', /^paid$/)],
      ['transfers acknowledged', acknowledged('transfer', /^ok$/)],
      ['withdrawals acknowledged', acknowledged('withdrawal', /ok$/)],
      ['replays answered', acknowledged('replay', /ok$|resolved/)],
      ...commerce.liveness(acknowledged),
      ['consistent reads by SQL', reads.sql],
      ['consistent reads through the API', reads.api],
    ];
    check(`liveness: at least ${minimum} of each kind of operation, and every fault injected`, [
      ...liveness.filter(([, n]) => n < minimum).map(([what, n]) => `only ${n} ${what}`),
      ...faultSchedule.filter((f) => (stats.faults.get(f.name) ?? 0) === 0).map((f) => `fault never injected: ${f.name}`),
    ]);

    // Memory: no API or worker grows without bound (each incarnation, from its first reading to its last).
    sampleMemory('end', true);
    const growth: string[] = [];
    const incarnations = new Map<string, typeof rssReadings>();
    for (const reading of rssReadings) incarnations.set(`${reading.name}/${reading.pid}`, [...(incarnations.get(`${reading.name}/${reading.pid}`) ?? []), reading]);
    const rssLines: [string, string, string][] = [];
    for (const [key, readings] of incarnations) {
      // The baseline is taken once the process has warmed up (a restarted API's first reading can be mid-start-up).
      const first = readings.find((r) => r.at >= readings[0].at + 20_000);
      if (!/^(api|worker)/.test(key) || !first || first === readings.at(-1)) continue;
      const last = readings.at(-1)!;
      const limit = Math.max(150, first.mb * 0.75);
      rssLines.push([key, `${first.mb.toFixed(0)} → ${last.mb.toFixed(0)} MB`, `over ${((last.at - first.at) / 1000).toFixed(0)} s (limit +${limit.toFixed(0)} MB)`]);
      if (last.mb - first.mb > limit) growth.push(`${key} grew from ${first.mb.toFixed(0)} MB to ${last.mb.toFixed(0)} MB in ${((last.at - first.at) / 1000).toFixed(0)} s`);
    }
    check('RSS of every API and worker process stays bounded', growth);

    // ---- The summary.
    const lines: string[] = [];
    const table = (title: string, rows: [string, string, string?][]) => {
      lines.push('', title);
      const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
      for (const r of rows) lines.push(`  ${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2] ?? ''}`.trimEnd());
    };
    const all = stats.latencies;
    lines.push(`pgwallet fault run · seed ${options.seed} · ${options.users} users · concurrency ${options.concurrency} · load ${loadSeconds.toFixed(0)} s · total ${elapsed()} s`);
    table('operations (kind · outcome · count)', [...stats.ops].sort().map(([key, n]) => {
      const [kind, outcome] = key.split('\t');
      return [kind, outcome, String(n)];
    }));
    table('faults injected', [...stats.faults].map(([name, n]) => [name, String(n)]));
    table('process restarts (starts − 1) and crashes (exits we did not cause)', processes.map((p) => [p.name, `${p.starts - 1} restarts`, `${p.unexpectedExits} crashes`]));
    table('throughput and latency', [
      ['load requests', `${loadRequests} in ${loadSeconds.toFixed(0)} s`, `${(loadRequests / loadSeconds).toFixed(1)}/s`],
      ['latency (all requests)', `p50 ${percentile(all, 0.5)} ms`, `p99 ${percentile(all, 0.99)} ms`],
      ...stats.intervals.map((i): [string, string, string] => [`  t=${i.at} s`, `${(i.ops / (intervalMs / 1000)).toFixed(1)}/s`, `p99 ${i.p99} ms`]),
    ]);
    table('memory (RSS)', memory.map((m) => [m.at, Object.entries(m).filter(([k]) => k !== 'at').map(([k, v]) => `${k} ${v}`).join(', ')]));
    table('RSS per API/worker incarnation (first → last reading)', rssLines);
    table('liveness', liveness.map(([what, n]) => [what, String(n)]));
    table('consistent reads during the load', [['by SQL (one statement)', String(reads.sql)], ['through the API (one request)', String(reads.api)], ['skipped (down or paused)', String(reads.skipped)]]);
    table('flags and dead jobs explained by injected faults', explainedBy.size ? [...explainedBy].map(([what, n]) => [what, String(n)]) : [['none', '']]);
    table('hostile input', [
      ['cases', String(fuzzReport.cases)],
      ['graphql-js rejections without a code (known gap)', String(fuzzReport.uncoded)],
      ['statuses', Object.entries(fuzzReport.statuses).map(([s, n]) => `${s}×${n}`).join(' ')],
      ['codes', Object.entries(fuzzReport.codes).map(([s, n]) => `${s}×${n}`).join(' ')],
    ]);
    const depositStatuses = new Map<string, number>();
    for (const d of deposits) depositStatuses.set(`${d.status}${d.needs_attention ? ' (flagged)' : ''}`, (depositStatuses.get(`${d.status}${d.needs_attention ? ' (flagged)' : ''}`) ?? 0) + 1);
    const withdrawalStatuses = new Map<string, number>();
    for (const w of withdrawals) withdrawalStatuses.set(`${w.status}${w.needs_attention ? ' (flagged)' : ''}`, (withdrawalStatuses.get(`${w.status}${w.needs_attention ? ' (flagged)' : ''}`) ?? 0) + 1);
    const refundStatuses = new Map<string, number>();
    for (const x of refunds) refundStatuses.set(x.status, (refundStatuses.get(x.status) ?? 0) + 1);
    const reversalRows = await sql(`select kind, count(*)::int as n, sum(receivable_amount)::text as receivable from app_public.reversals group by kind`);
    const reversalSummary = reversalRows.length ? reversalRows.map((x) => `${x.kind} ${x.n} (receivable ${x.receivable})`).join(', ') : 'none';
    table('final states', [
      ['deposits', [...depositStatuses].map(([s, n]) => `${s} ${n}`).join(', ')],
      ['withdrawals', [...withdrawalStatuses].map(([s, n]) => `${s} ${n}`).join(', ')],
      ['sandbox', `${paidPurchases.length} purchases paid, ${successPayouts.length} payouts succeeded`],
      ['refunds', refundStatuses.size ? [...refundStatuses].map(([s, n]) => `${s} ${n}`).join(', ') : 'none'],
      ['reversals', reversalSummary],
    ]);
    table('checks', [
      ...checks.map((c): [string, string] => [c.failures.length === 0 ? 'PASS' : 'FAIL', c.name + (c.failures.length ? ` (${c.failures.length})` : '')]),
      [fuzzReport.violations.length === 0 ? 'PASS' : 'FAIL', 'hostile input: no 5xx, stable codes, nothing recorded'],
      [settled ? 'PASS' : 'FAIL', 'settled in time'],
    ]);
    lines.push('', violations.length === 0 ? `OK: no violations (seed ${options.seed})` : `FAILED: ${violations.length} violation(s); reproduce with --seed ${options.seed}`);
    report = lines.join('\n');
    if (violations.length > 0 || options.keepDir) log(`logs and data kept in ${root}`);
  } catch (error) {
    violation(`harness error: ${(error as Error).stack ?? error}`);
    for (const p of processes) if (p.stderrTail) log(`--- ${p.name} stderr tail ---\n${p.stderrTail.slice(-1500)}`);
    log(`logs and data kept in ${root}`);
    report = `FAILED: harness error; reproduce with --seed ${options.seed}`;
  } finally {
    await owner.end().catch(() => undefined);
    for (const p of [...apis, ...workers]) {
      p.signal('SIGCONT');
      await p.stop('SIGTERM', 10_000);
    }
    await sandbox.stop('SIGTERM', 5_000);
    for (const pid of postgres.tree()) try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    await postgres.stop('SIGINT', 10_000);
    for (const p of processes) p.closeLog();
    if (violations.length === 0 && !options.keepDir) rmSync(root, { recursive: true, force: true });
  }
  return { ok: violations.length === 0, seed: options.seed, violations, report };
}

/** Every sum of a subset (capped: beyond 18 values only the range is checked). */
function subsetSums(values: number[]): { has(n: number): boolean } {
  if (values.length > 18) {
    const low = values.filter((v) => v < 0).reduce((a, b) => a + b, 0);
    const high = values.filter((v) => v > 0).reduce((a, b) => a + b, 0);
    return { has: (n) => n >= low && n <= high };
  }
  let sums = new Set([0]);
  for (const v of values) sums = new Set([...sums, ...[...sums].map((s) => s + v)]);
  return sums;
}

export async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

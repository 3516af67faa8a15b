// Per-operation limits (issue 9 §2) attacked over real HTTP: many sign-in or
// money fields in one document (aliases, fragments, commas, block strings,
// several operations), batched bodies, and IPv6 clients rotating addresses
// inside their /64. Each attack must be refused (400 and nothing run, or 429)
// and counted per field. Every test speaks from its own client address
// (X-Forwarded-For, trusted from loopback) so buckets never collide.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'postgraphile/graphql';
import { makePool } from '../src/db/pools.ts';
import { startApi, type Api } from '../src/http/app.ts';
import type { ApiLimits } from '../src/http/limits-config.ts';
import { clientKey, countFields, MONEY_FIELDS, SIGN_IN_FIELDS, verifyExecution } from '../src/http/operation-limits.ts';
import { makeLogger } from '../src/logger.ts';
import { PASSWORD, testTokenSettings, uniqueEmail } from './helpers/api.ts';
import { accountState, createUser, fund, ownerPool, walletOf } from './helpers/ledger.ts';
import { roomInWindow } from './helpers/rate-window.ts';

const LIMITS: ApiLimits = {
  rate: { windowSeconds: 60, perIp: 1000, perUser: 1000, authPerIp: 3, moneyPerUser: 7 },
  maxMoneyFields: 5,
  maxDepth: 10,
  maxComplexity: 5000,
  maxPageSize: 100,
  introspection: false,
  ruru: false,
  corsOrigins: [],
  trustProxy: 'loopback',
  otherBodyLimitBytes: 16_384,
};

let api: Api;
let authPool: ReturnType<typeof makePool>;
let owner: ReturnType<typeof ownerPool>;
let ipCounter = 0;
const uniqueIp = () => `10.${(process.pid % 200) + 50}.${Math.floor(Date.now() / 1000) % 250}.${(++ipCounter % 250) + 1}`;

async function post(body: unknown, options: { ip?: string; token?: string } = {}) {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      'x-forwarded-for': options.ip ?? uniqueIp(),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

const loginArgs = (email: string) => `(input: { email: "${email}", password: "wrong password" })`;

async function attemptsFor(...emails: string[]): Promise<number> {
  const { rows } = await owner.query('select count(*)::int as n from app_private.login_attempts where email = any($1::citext[])', [emails]);
  return rows[0].n;
}

async function register(ip = uniqueIp()) {
  const email = uniqueEmail('oplimits');
  const result = await post({ query: `mutation($i: RegisterInput!) { register(input: $i) { accessToken user { rowId } } }`, variables: { i: { email, password: PASSWORD, fullName: 'Op Limits' } } }, { ip });
  if (!result.body.data?.register) throw new Error(JSON.stringify(result.body));
  return { email, token: result.body.data.register.accessToken as string, userId: result.body.data.register.user.rowId as string };
}

beforeAll(async () => {
  const logger = makeLogger('silent');
  authPool = makePool(inject('authUrl'), 'oplimits-test', logger);
  owner = ownerPool(2);
  api = await startApi({ host: '127.0.0.1', port: 0, authPool, tokens: await testTokenSettings(), logger, development: false, bodyLimitBytes: 100_000, limits: LIMITS });
});
afterAll(async () => {
  await api.close();
  await authPool.end();
  await owner.end();
});

describe('at most one sign-in field per request', () => {
  it('refuses logins batched by aliases with 400 TOO_MANY_SIGN_IN_FIELDS, and runs none of them', async () => {
    const emails = Array.from({ length: 30 }, () => uniqueEmail('batched'));
    const query = `mutation { ${emails.map((e, i) => `l${i}: login${loginArgs(e)} { accessToken }`).join(' ')} }`;
    const refused = await post({ query });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].extensions.code).toBe('TOO_MANY_SIGN_IN_FIELDS');
    expect(await attemptsFor(...emails)).toBe(0);
  });

  it('sees through fragments, inline fragments and mixed sign-in fields', async () => {
    const [a, b] = [uniqueEmail('frag'), uniqueEmail('frag')];
    const viaFragment = await post({
      query: `mutation { ...Two } fragment Two on Mutation { x: login${loginArgs(a)} { accessToken } ... on Mutation { y: login${loginArgs(b)} { accessToken } } }`,
    });
    expect(viaFragment.status).toBe(400);
    expect(viaFragment.body.errors[0].extensions.code).toBe('TOO_MANY_SIGN_IN_FIELDS');
    const mixed = await post({
      query: `mutation { login${loginArgs(a)} { accessToken } requestPasswordReset(input: { email: "${b}" }) { result } }`,
    });
    expect(mixed.status).toBe(400);
    expect(await attemptsFor(a, b)).toBe(0);
  });

  it('counts the operation that runs when a document holds several', async () => {
    const ip = uniqueIp();
    const [a, b, c] = [uniqueEmail('multi'), uniqueEmail('multi'), uniqueEmail('multi')];
    const document = `mutation One { login${loginArgs(a)} { accessToken } }
      mutation Many { b: login${loginArgs(b)} { accessToken } c: login${loginArgs(c)} { accessToken } }`;
    const one = await post({ query: document, operationName: 'One' }, { ip });
    expect(one.status).toBe(200);
    expect(one.body.errors[0].extensions.code).toBe('INVALID_CREDENTIALS');
    const many = await post({ query: document, operationName: 'Many' }, { ip });
    expect(many.status).toBe(400);
    expect(many.body.errors[0].extensions.code).toBe('TOO_MANY_SIGN_IN_FIELDS');
    // No operation name: GraphQL would refuse to choose; the largest operation is what is judged.
    expect((await post({ query: document }, { ip })).status).toBe(400);
    expect(await attemptsFor(a)).toBe(1);
    expect(await attemptsFor(b, c)).toBe(0);
  });

  it('counts the comma and block-string tricks that slipped past the old regex', async () => {
    await roomInWindow(LIMITS.rate.windowSeconds, 10);
    const ip = uniqueIp();
    const email = uniqueEmail('comma');
    // GraphQL commas are whitespace: `login,(input: …)` is a login.
    const comma = () => post({ query: `mutation { login,(input: { email: "${email}", password: "wrong password" }) { accessToken } }` }, { ip });
    // A block string before the field, holding quotes and a comment sign.
    const block = () =>
      post({ query: `mutation { a: openWallet(input: { currency: """ " # """ }) { clientMutationId } b: login${loginArgs(email)} { accessToken } }` }, { ip });
    expect((await comma()).status).toBe(200);
    expect((await block()).status).toBe(200);
    expect((await comma()).status).toBe(200);
    const fourth = await comma(); // authPerIp is 3: the fourth sign-in field of this address
    expect(fourth.status).toBe(429);
    expect(fourth.body.errors[0].extensions.code).toBe('RATE_LIMITED');
    // Ordinary queries from the address still pass.
    expect((await post({ query: '{ __typename }' }, { ip })).status).toBe(200);
  });

  it('refuses a JSON array of operations (batching) with 400', async () => {
    const emails = [uniqueEmail('array'), uniqueEmail('array')];
    const batch = await post(emails.map((e) => ({ query: `mutation { login${loginArgs(e)} { accessToken } }` })));
    expect(batch.status).toBe(400);
    expect(batch.body.errors[0].extensions.code).toBe('BATCH_NOT_SUPPORTED');
    expect(await attemptsFor(...emails)).toBe(0);
  });
});

describe('money mutations per request', () => {
  it('refuses more than GRAPHQL_MAX_MONEY_FIELDS with 400 and moves nothing; each field counts against the money limit', async () => {
    await roomInWindow(LIMITS.rate.windowSeconds, 10);
    const sender = await register();
    const walletId = await walletOf(owner, sender.userId);
    await fund(owner, walletId, 10_000);
    const recipient = await createUser(owner, 'oplimits-to');
    const transfers = (n: number, prefix: string) =>
      `mutation { ${Array.from({ length: n }, (_, i) => `t${i}: transfer(input: { fromWalletId: "${walletId}", toEmail: "${recipient.email}", amount: "1", idempotencyKey: "${prefix}-${i}" }) { result { rowId } }`).join(' ')} }`;

    const six = await post({ query: transfers(6, 'six') }, { token: sender.token });
    expect(six.status).toBe(400);
    expect(six.body.errors[0].extensions.code).toBe('TOO_MANY_MONEY_FIELDS');
    expect((await accountState(owner, walletId)).balance).toBe(10_000n);

    const five = await post({ query: transfers(5, 'five') }, { token: sender.token });
    expect(five.status).toBe(200);
    expect(five.body.errors).toBeUndefined();
    expect((await accountState(owner, walletId)).balance).toBe(9_995n);

    // moneyPerUser is 7: five used, two more fit, a third does not.
    expect((await post({ query: transfers(2, 'two') }, { token: sender.token })).status).toBe(200);
    const over = await post({ query: transfers(1, 'one') }, { token: sender.token });
    expect(over.status).toBe(429);
    expect((await accountState(owner, walletId)).balance).toBe(9_993n);
  });
});

describe('IPv6 clients', () => {
  it('share one sign-in bucket per /64, whatever address in it they use', async () => {
    await roomInWindow(LIMITS.rate.windowSeconds, 10);
    const prefix = `2001:db8:${(process.pid % 0xffff).toString(16)}:${(Date.now() % 0xffff).toString(16)}`;
    const email = uniqueEmail('ipv6');
    const login = (ip: string) => post({ query: `mutation { login${loginArgs(email)} { accessToken } }` }, { ip });
    expect((await login(`${prefix}::1`)).status).toBe(200);
    expect((await login(`${prefix}:1:2:3:4`)).status).toBe(200);
    expect((await login(`${prefix}:ffff:ffff:ffff:fffe`)).status).toBe(200);
    expect((await login(`${prefix}:dead:beef::99`)).status).toBe(429);
    // Another /64 has its own bucket.
    expect((await login(`2001:db8:ffff:${(Date.now() % 0xffff).toString(16)}::1`)).status).toBe(200);
  });

  it('keys addresses by /64 (IPv6), as is (IPv4, IPv4-mapped)', () => {
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002::9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
  });
});

describe('classification', () => {
  it('counts root fields by name through aliases and fragments; merged duplicates run once', () => {
    const count = (q: string, op?: string) => countFields(parse(q), op);
    expect(count('mutation { a: login(input: {}) { accessToken } }')).toEqual({ signIn: 1, money: 0 });
    expect(count('mutation { login(input: $i) { accessToken } login(input: $i) { refreshToken } }')).toEqual({ signIn: 1, money: 0 });
    expect(count('mutation { ...F ...F } fragment F on Mutation { transfer(input: $i) { clientMutationId } }')).toEqual({ signIn: 0, money: 1 });
    expect(count('mutation { updateUser(input: {patch: {fullName: "login(x) transfer("}}) { clientMutationId } }')).toEqual({ signIn: 0, money: 0 });
    expect(count('{ currentUser { login: rowId } }')).toEqual({ signIn: 0, money: 0 });
  });

  it('is checked again at execution, on the validated document: an uncharged operation does not run', () => {
    const document = parse('mutation { login(input: {email: "a@b.cd", password: "x"}) { accessToken } }');
    expect(verifyExecution(document, undefined, undefined, 5)?.code).toBe('RATE_LIMITED');
    expect(verifyExecution(document, undefined, { signIn: 1, money: 0 }, 5)).toBeUndefined();
    const six = parse(`mutation { ${Array.from({ length: 6 }, (_, i) => `t${i}: transfer(input: $i) { clientMutationId }`).join(' ')} }`);
    expect(verifyExecution(six, undefined, { signIn: 0, money: 6 }, 5)?.code).toBe('TOO_MANY_MONEY_FIELDS');
  });

  it('classifies every mutation of the schema (a new one must be put in a class on purpose)', () => {
    const schema = readFileSync('tests/__snapshots__/schema.graphql', 'utf8');
    const mutation = /\ntype Mutation \{([\s\S]*?)\n\}/.exec(schema)![1]!;
    const fields = [...mutation.matchAll(/^  ([a-zA-Z]+)\(/gm)].map((m) => m[1]!);
    // Neither a sign-in nor a money field, each for a reason:
    const other = new Set([
      'logout', // ends a session; no password check
      'openWallet', // an empty wallet
      'updateUser', 'updateUserByEmail', 'updateUserByRowId', // full name only
      'signOutEverywhere', // ends sessions
      // Admin operations without money moving here: maker-checker and the admin log cover them.
      'adminEraseUser', 'adminResolveDiscrepancy', 'adminResolveFlaggedPayment', 'adminRetryJob', 'adminRequestRoleChange', 'adminDecideRoleChange', 'adminSetWalletFrozen', 'adminReviewReversal',
      // Voting set-up by organisers and judges: no money moves (castVotes, reviewVote and withdrawEventFunds are money fields).
      'createOrganisation', 'addOrganisationMember', 'createEvent', 'updateEvent', 'updateEventByRowId', 'setEventStatus',
      'createCategory', 'updateCategory', 'updateCategoryByEventIdAndName', 'updateCategoryByRowId',
      'createContestant', 'updateContestant', 'updateContestantByRowId', 'inviteJudge', 'scoreContestant',
      // Commerce set-up: no money moves (purchases, reservations, refunds and payouts are money fields).
      'becomeMerchant', 'adminSetMerchantStatus', 'createProduct', 'updateProduct', 'setProductStock', 'cancelReservation',
    ]);
    const unclassified = fields.filter((f) => !SIGN_IN_FIELDS.has(f) && !MONEY_FIELDS.has(f) && !other.has(f));
    expect(unclassified).toEqual([]);
    expect(fields.length).toBeGreaterThan(20);
  });
});

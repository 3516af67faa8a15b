// Abuse limits over real HTTP: rate limits counted in PostgreSQL (429 with
// Retry-After, and recovery), stricter for sign-in and money mutations; depth,
// complexity and page-size caps; introspection and Ruru off; CORS allow-list;
// body limits on every route. Each test speaks from its own client address
// (X-Forwarded-For, trusted from loopback) so buckets never collide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { apiLimitsFromEnv, type ApiLimits } from '../src/http/limits-config.ts';
import { makePool } from '../src/db/pools.ts';
import { startApi, type Api } from '../src/http/app.ts';
import { makeLogger } from '../src/logger.ts';
import { PASSWORD, testTokenSettings, uniqueEmail } from './helpers/api.ts';
import { fund, ownerPool, walletOf } from './helpers/ledger.ts';
import { roomInWindow } from './helpers/rate-window.ts';

const WINDOW = 4;
const LIMITS: ApiLimits = {
  rate: { windowSeconds: WINDOW, perIp: 5, perUser: 4, authPerIp: 2, moneyPerUser: 2 },
  maxMoneyFields: 5,
  maxDepth: 6,
  maxComplexity: 2000,
  maxPageSize: 100,
  introspection: false,
  ruru: false,
  corsOrigins: ['https://app.example.com'],
  trustProxy: 'loopback',
  otherBodyLimitBytes: 1024,
};

let api: Api;
let authPool: ReturnType<typeof makePool>;
let owner: ReturnType<typeof ownerPool>;
let ipCounter = 0;
const uniqueIp = () => `10.${process.pid % 250}.${Math.floor(Date.now() / 1000) % 250}.${(++ipCounter % 250) + 1}`;

async function post(body: unknown, options: { ip?: string; token?: string; contentType?: string } = {}) {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': options.contentType ?? 'application/json',
      accept: 'application/json',
      'x-forwarded-for': options.ip ?? uniqueIp(),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

async function register(ip = uniqueIp()) {
  const email = uniqueEmail('abuse');
  const result = await post({ query: `mutation($i: RegisterInput!) { register(input: $i) { accessToken user { rowId } } }`, variables: { i: { email, password: PASSWORD, fullName: 'Abuse Test' } } }, { ip });
  if (!result.body.data?.register) throw new Error(JSON.stringify(result.body));
  return { email, token: result.body.data.register.accessToken as string, userId: result.body.data.register.user.rowId as string };
}

beforeAll(async () => {
  const logger = makeLogger('silent');
  authPool = makePool(inject('authUrl'), 'abuse-test', logger);
  owner = ownerPool(2);
  api = await startApi({ host: '127.0.0.1', port: 0, authPool, tokens: await testTokenSettings(), logger, development: false, bodyLimitBytes: 100_000, limits: LIMITS });
  // The first request pays for warming up (plans, prepared statements); on a
  // loaded machine that alone could outlast a 4-second window mid-burst.
  await post({ query: '{ __typename }' });
});
afterAll(async () => {
  await api.close();
  await authPool.end();
  await owner.end();
});

describe('rate limits', () => {
  it('per address: over the limit is 429 with Retry-After and RATE_LIMITED, and it recovers', async () => {
    const ip = uniqueIp();
    await roomInWindow(WINDOW, 3);
    for (let i = 0; i < LIMITS.rate.perIp; i++) expect((await post({ query: '{ __typename }' }, { ip })).status).toBe(200);
    const limited = await post({ query: '{ __typename }' }, { ip });
    expect(limited.status).toBe(429);
    expect(limited.body.errors[0].extensions.code).toBe('RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW);
    // Another address is not affected.
    expect((await post({ query: '{ __typename }' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 50));
    expect((await post({ query: '{ __typename }' }, { ip })).status).toBe(200);
  });

  it('sign-in is stricter: login, register and refreshSession count against the auth limit', async () => {
    const ip = uniqueIp();
    await roomInWindow(WINDOW, 3);
    const login = () => post({ query: `mutation { login(input: { email: "nobody@example.com", password: "wrong password" }) { accessToken } }` }, { ip });
    expect((await login()).status).toBe(200);
    expect((await login()).status).toBe(200);
    const third = await login();
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBeTruthy();
    // Ordinary queries from the same address still pass (per-IP limit not reached).
    expect((await post({ query: '{ __typename }' }, { ip })).status).toBe(200);
    // Hiding the field name behind a comment or an alias does not help.
    expect((await post({ query: `mutation { x: login #\n (input: { email: "a@b.cd", password: "x" }) { accessToken } }` }, { ip })).status).toBe(429);
  });

  it('per user across addresses, and money mutations per user are stricter', async () => {
    const person = await register();
    const walletId = await walletOf(owner, person.userId);
    await fund(owner, walletId, 10_000);
    await roomInWindow(WINDOW, 3);
    const transfer = (key: string) =>
      post(
        { query: `mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`, variables: { i: { fromWalletId: walletId, toEmail: 'nobody@example.com', amount: '1', idempotencyKey: key } } },
        { token: person.token },
      );
    expect((await transfer('a')).status).toBe(200); // RECIPIENT_NOT_FOUND, but counted
    expect((await transfer('b')).status).toBe(200);
    expect((await transfer('c')).status).toBe(429);
    // A read is still allowed (4 per user per window, 3 used)…
    expect((await post({ query: '{ currentUser { rowId } }' }, { token: person.token })).status).toBe(200);
    // …and the per-user limit holds whatever address the user comes from.
    expect((await post({ query: '{ currentUser { rowId } }' }, { token: person.token })).status).toBe(429);
  });
});

describe('GraphQL caps', () => {
  it('refuses operations nested too deeply', async () => {
    const deep = await post({ query: '{ allDeposits { nodes { user { depositsByUserId { nodes { user { depositsByUserId { nodes { rowId } } } } } } } } }' });
    expect(deep.body.errors[0].extensions.code).toBe('QUERY_TOO_DEEP');
  });

  it('refuses operations that could return too much', async () => {
    const wide = await post({ query: '{ allDeposits(first: 100) { nodes { rowId user { depositsByUserId(first: 100) { nodes { rowId amount } } } } } }' });
    expect(wide.body.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('caps page size, as a literal or a variable', async () => {
    expect((await post({ query: '{ allWallets(first: 101) { totalCount } }' })).body.errors[0].extensions.code).toBe('PAGE_SIZE_TOO_LARGE');
    const variable = await post({ query: 'query($n: Int) { allWallets(first: $n) { totalCount } }', variables: { n: 5000 } });
    expect(variable.status).toBe(400);
    expect(variable.body.errors[0].extensions.code).toBe('PAGE_SIZE_TOO_LARGE');
    const ok = await post({ query: 'query($n: Int) { allWallets(first: $n) { totalCount } }', variables: { n: 100 } });
    expect(ok.body.errors?.[0]?.extensions?.code).not.toBe('PAGE_SIZE_TOO_LARGE');
  });

  it('introspection and Ruru are off (the default in production)', async () => {
    const introspect = await post({ query: '{ __schema { types { name } } }' });
    expect(introspect.body.errors[0].extensions.code).toBe('INTROSPECTION_DISABLED');
    expect((await post({ query: '{ __type(name: "User") { name } }' })).body.errors[0].extensions.code).toBe('INTROSPECTION_DISABLED');
    expect((await post({ query: '{ __typename }' })).body.data).toEqual({ __typename: 'Query' });
    expect((await fetch(`${api.url}/graphiql`)).status).toBe(404);
    const production = apiLimitsFromEnv({ NODE_ENV: 'production' });
    expect([production.introspection, production.ruru]).toEqual([false, false]);
    const development = apiLimitsFromEnv({ NODE_ENV: 'development' });
    expect([development.introspection, development.ruru]).toEqual([true, true]);
    expect(apiLimitsFromEnv({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
  });
});

describe('HTTP hygiene', () => {
  it('CORS answers only the allowed origins', async () => {
    const preflight = (origin: string) =>
      fetch(`${api.url}/graphql`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('Authorization');
    const denied = await preflight('https://evil.example.net');
    expect(denied.status).toBe(403);
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await fetch(`${api.url}/health`, { headers: { origin: 'https://evil.example.net' } });
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('limits bodies on every route and reports malformed JSON as BAD_REQUEST', async () => {
    const big = await fetch(`${api.url}/health`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2000) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const bad = await post('{not json');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].extensions.code).toBe('BAD_REQUEST');
    const huge = await post({ query: `{ __typename } # ${'x'.repeat(120_000)}` });
    expect(huge.status).toBe(413);
  });
});

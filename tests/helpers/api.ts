// Starts the real API (Express + PostGraphile) on a random port against the
// test database, and offers a tiny GraphQL client over real HTTP.
import '../../src/graphile-env.ts';
import pg from 'pg';
import type { Logger } from 'pino';
import { inject } from 'vitest';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import type { TokenSettings } from '../../src/auth/tokens.ts';
import { makePool } from '../../src/db/pools.ts';
import { startApi, type Api } from '../../src/http/app.ts';
import { makeLogger } from '../../src/logger.ts';
import type { MetricsSettings } from '../../src/metrics/http.ts';

export interface GraphQLResponse<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown } }[];
}

export interface TestApi {
  url: string;
  api: Api;
  tokens: TokenSettings;
  graphql<T = any>(query: string, variables?: Record<string, unknown>, accessToken?: string): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export async function testTokenSettings(): Promise<TokenSettings> {
  return { keys: await loadSigningKeys(await generatePrivateJwk()), issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 900 };
}

export async function startTestApi(options: { tokens?: TokenSettings; logger?: Logger; metricsSettings?: MetricsSettings } = {}): Promise<TestApi> {
  const logger = options.logger ?? makeLogger(process.env.LOG_LEVEL ?? 'silent');
  const authPool = makePool(inject('authUrl'), 'test-api', logger);
  const tokens = options.tokens ?? (await testTokenSettings());
  const api = await startApi({ host: '127.0.0.1', port: 0, authPool, tokens, logger, development: false, bodyLimitBytes: 100_000, metricsSettings: options.metricsSettings });
  return {
    url: api.url,
    api,
    tokens,
    async graphql(query, variables, accessToken) {
      const response = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, ...((await response.json()) as object) };
    },
    async close() {
      await api.close();
      await authPool.end();
    },
  };
}

let counter = 0;
/** An email no other test (or earlier run against TEST_DATABASE_URL) has used. */
export function uniqueEmail(label = 'user'): string {
  counter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

export const AUTH_FIELDS = 'accessToken refreshToken accessTokenExpiresAt user { rowId email fullName }';

let owner: pg.Pool | undefined;
/** The test database as its owner (lazily; idle connections let the process exit). */
function ownerDb(): pg.Pool {
  owner ??= new pg.Pool({ connectionString: inject('ownerUrl'), max: 2, idleTimeoutMillis: 1000, allowExitOnIdle: true });
  return owner;
}

/**
 * Marks a user's email as verified, as clicking the emailed link would
 * (tests/accounts.test.ts covers the link itself): most suites need users who
 * can receive transfers and withdraw.
 */
export async function markEmailVerified(userId: string, db: Pick<pg.Pool, 'query'> = ownerDb()): Promise<void> {
  await db.query('update app_public.users set email_verified_at = coalesce(email_verified_at, now()) where id = $1', [userId]);
}

/** Registers through the API; the account is verified unless `verified: false`. */
export async function registerUser(api: TestApi, label = 'user', options: { verified?: boolean } = {}) {
  const email = uniqueEmail(label);
  const result = await api.graphql(
    `mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_FIELDS} } }`,
    { input: { email, password: PASSWORD, fullName: `Test ${label}` } },
  );
  if (!result.data?.register) throw new Error(`register failed: ${JSON.stringify(result.errors)}`);
  if (options.verified !== false) await markEmailVerified(result.data.register.user.rowId);
  return { email, ...result.data.register } as {
    email: string;
    accessToken: string;
    refreshToken: string;
    accessTokenExpiresAt: string;
    user: { rowId: string; email: string; fullName: string };
  };
}

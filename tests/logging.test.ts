// Logs are JSON with request ids, and never carry passwords, tokens or the
// values behind a database error.
import { Writable } from 'node:stream';
import { GraphQLError } from 'postgraphile/graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeMaskError } from '../src/http/graphql/mask-error.ts';
import { makeLogger } from '../src/logger.ts';
import { AUTH_FIELDS, PASSWORD, registerUser, startTestApi, type TestApi } from './helpers/api.ts';

/** A pino destination that keeps every line. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: makeLogger('debug', stream) };
}

const logs = capture();
let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ logger: logs.logger });
});
afterAll(() => api.close());

describe('request logs', () => {
  it('after a full sign-in flow hold request ids but no password or token', async () => {
    const session = await registerUser(api, 'logs');
    const login = await api.graphql(`mutation($i: LoginInput!) { login(input: $i) { ${AUTH_FIELDS} } }`, { i: { email: session.email, password: PASSWORD } });
    const refreshed = await api.graphql(`mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { ${AUTH_FIELDS} } }`, {
      i: { refreshToken: login.data.login.refreshToken },
    });
    await api.graphql('{ currentUser { email } }', {}, refreshed.data.refreshSession.accessToken);
    await api.graphql('{ currentUser { email } }', {}, `${session.accessToken}tampered`);
    await fetch(`${api.url}/health`, { headers: { cookie: 'session=secret-cookie-value' } });

    const text = logs.lines.join('\n');
    const requests = logs.lines.map((line) => JSON.parse(line)).filter((entry) => entry.req);
    expect(requests.length).toBeGreaterThanOrEqual(6);
    for (const entry of requests) expect(entry.req.id).toMatch(/^[0-9a-f-]{36}$/);
    for (const secret of [
      PASSWORD,
      session.accessToken,
      session.refreshToken,
      login.data.login.accessToken,
      login.data.login.refreshToken,
      refreshed.data.refreshSession.refreshToken,
      'secret-cookie-value',
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('error masking', () => {
  it('a constraint violation from a generated mutation gets its code, not the constraint name', async () => {
    const session = await registerUser(api, 'longname');
    const result = await api.graphql(
      'mutation($id: UUID!, $n: String!) { updateUserByRowId(input: { rowId: $id, userPatch: { fullName: $n } }) { user { fullName } } }',
      { id: session.user.rowId, n: 'x'.repeat(300) },
      session.accessToken,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FULL_NAME_INVALID');
    expect(result.errors?.[0]?.message).not.toContain('users_full_name_check');
  });

  it('an unexpected database error is replaced by an error id, logged without row values', () => {
    const { lines, logger } = capture();
    const pgError = Object.assign(new Error('duplicate key value violates unique constraint "x_key"'), {
      code: '23505',
      detail: 'Key (email)=(victim@example.com) already exists.',
      constraint: 'x_key',
    });
    const masked = makeMaskError(logger)(new GraphQLError(pgError.message, { originalError: pgError, path: ['doSomething'] }));
    expect(masked.extensions.code).toBe('INTERNAL_ERROR');
    expect(masked.message).toMatch(/^An unexpected error occurred \(error id [0-9a-f-]{36}\)\.$/);
    expect(masked.message).not.toContain('x_key');
    const logged = lines.join('\n');
    expect(logged).toContain(String(masked.extensions.errorId));
    expect(logged).toContain('23505');
    expect(logged).not.toContain('victim@example.com');
  });
});

describe('text PostgreSQL cannot store', () => {
  it('a NUL byte in a string argument gets TEXT_INVALID, not INTERNAL_ERROR', async () => {
    const session = await registerUser(api, 'nul');
    const result = await api.graphql(
      'mutation($id: UUID!, $n: String!) { updateUserByRowId(input: { rowId: $id, userPatch: { fullName: $n } }) { user { fullName } } }',
      { id: session.user.rowId, n: 'a\u0000b' },
      session.accessToken,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('TEXT_INVALID');
    const me = await api.graphql('{ currentUser { fullName } }', {}, session.accessToken);
    expect(me.data.currentUser.fullName).toBe('Test nul');
  });
});

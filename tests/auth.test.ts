// Sign-up, sign-in, refresh-token rotation and logout, over real HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_FIELDS, PASSWORD, registerUser, startTestApi, uniqueEmail, type TestApi } from './helpers/api.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_FIELDS} } }`;
const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { ${AUTH_FIELDS} } }`;
const REFRESH = `mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { ${AUTH_FIELDS} } }`;
const LOGOUT = `mutation($input: LogoutInput!) { logout(input: $input) { success } }`;
const CURRENT_USER = `{ currentUser { rowId email fullName role } }`;

const login = (email: string, password = PASSWORD) => api.graphql(LOGIN, { input: { email, password } });
const refresh = (refreshToken: string) => api.graphql(REFRESH, { input: { refreshToken } });
const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

describe('register', () => {
  it('creates the user and signs them in', async () => {
    const session = await registerUser(api, 'reg');
    expect(session.user.email).toBe(session.email);
    expect(session.user.fullName).toBe('Test reg');
    expect(session.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expiresIn = new Date(session.accessTokenExpiresAt).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);

    const me = await api.graphql(CURRENT_USER, {}, session.accessToken);
    expect(me.data.currentUser).toEqual({ rowId: session.user.rowId, email: session.email, fullName: 'Test reg', role: 'user' });
  });

  it('refuses a second account for the same email, in any letter case', async () => {
    const first = await registerUser(api, 'dupe');
    const again = await api.graphql(REGISTER, { input: { email: first.email.toUpperCase(), password: PASSWORD, fullName: 'X' } });
    expect(again.data.register).toBeNull();
    expect(codeOf(again)).toBe('EMAIL_TAKEN');
  });

  it.each([
    ['EMAIL_INVALID', { email: 'not-an-email', password: PASSWORD, fullName: 'X' }],
    ['PASSWORD_WEAK', { email: uniqueEmail(), password: 'short', fullName: 'X' }],
    ['PASSWORD_WEAK', { email: uniqueEmail(), password: 'x'.repeat(73), fullName: 'X' }],
    ['FULL_NAME_INVALID', { email: uniqueEmail(), password: PASSWORD, fullName: '   ' }],
  ])('rejects bad input with %s and creates nothing', async (code, input) => {
    const result = await api.graphql(REGISTER, { input });
    expect(codeOf(result)).toBe(code);
    expect(codeOf(await login(input.email, input.password))).toBe('INVALID_CREDENTIALS');
  });

  it('never returns the password or its hash in the schema', async () => {
    const result = await api.graphql(`{ __type(name: "User") { fields { name } } }`);
    const names = result.data.__type.fields.map((f: { name: string }) => f.name);
    expect(names).not.toContain('password');
    expect(names).not.toContain('passwordHash');
  });
});

describe('login', () => {
  it('signs in with the right password and refuses a wrong one', async () => {
    const { email, user } = await registerUser(api, 'login');
    const ok = await login(email);
    expect(ok.data.login.user.rowId).toBe(user.rowId);
    const wrong = await login(email, 'wrong password!!');
    expect(wrong.data.login).toBeNull();
    expect(codeOf(wrong)).toBe('INVALID_CREDENTIALS');
    expect(codeOf(await login(uniqueEmail('nobody')))).toBe('INVALID_CREDENTIALS');
  });

  it('locks an email after 5 failures within 15 minutes, even for the right password', async () => {
    const { email } = await registerUser(api, 'lock');
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(codeOf(await login(email, `wrong password ${attempt}`))).toBe('INVALID_CREDENTIALS');
    }
    const locked = await login(email);
    expect(codeOf(locked)).toBe('ACCOUNT_LOCKED');
    const retryAt = new Date(locked.errors![0].extensions!.retryAt as string).getTime();
    expect(retryAt - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(retryAt - Date.now()).toBeLessThanOrEqual(15 * 60_000);
  });

  it('counts parallel guesses too: 10 at once still lock after 5', async () => {
    const { email } = await registerUser(api, 'lockrace');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => login(email, `wrong password ${i}`)));
    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'INVALID_CREDENTIALS')).toHaveLength(5);
    expect(codes.filter((c) => c === 'ACCOUNT_LOCKED')).toHaveLength(5);
  });
});

describe('refreshSession', () => {
  it('rotates the refresh token on every use', async () => {
    const session = await registerUser(api, 'refresh');
    const next = await refresh(session.refreshToken);
    expect(next.data.refreshSession.user.rowId).toBe(session.user.rowId);
    expect(next.data.refreshSession.refreshToken).not.toBe(session.refreshToken);
    const me = await api.graphql(CURRENT_USER, {}, next.data.refreshSession.accessToken);
    expect(me.data.currentUser.rowId).toBe(session.user.rowId);
    const third = await refresh(next.data.refreshSession.refreshToken);
    expect(third.data.refreshSession.accessToken).toBeTruthy();
  });

  it('revokes the whole family when a rotated token is reused', async () => {
    const session = await registerUser(api, 'reuse');
    const rotated = (await refresh(session.refreshToken)).data.refreshSession;

    const replay = await refresh(session.refreshToken);
    expect(codeOf(replay)).toBe('REFRESH_TOKEN_REUSED');

    // The legitimate newest token and its access token die with the family.
    expect(codeOf(await refresh(rotated.refreshToken))).toBe('REFRESH_TOKEN_INVALID');
    const me = await api.graphql(CURRENT_USER, {}, rotated.accessToken);
    expect(me.data.currentUser).toBeNull();
    // Other sessions of the same user are unaffected.
    const other = await login(session.email);
    expect((await api.graphql(CURRENT_USER, {}, other.data.login.accessToken)).data.currentUser.rowId).toBe(session.user.rowId);
  });

  it('refuses unknown tokens', async () => {
    expect(codeOf(await refresh('not-a-real-token'))).toBe('REFRESH_TOKEN_INVALID');
  });
});

describe('logout', () => {
  it('ends the session: refresh fails and the access token sees nothing', async () => {
    const session = await registerUser(api, 'logout');
    const out = await api.graphql(LOGOUT, { input: { refreshToken: session.refreshToken } }, session.accessToken);
    expect(out.data.logout.success).toBe(true);
    expect(codeOf(await refresh(session.refreshToken))).toBe('REFRESH_TOKEN_INVALID');
    expect((await api.graphql(CURRENT_USER, {}, session.accessToken)).data.currentUser).toBeNull();
  });

  it('is idempotent and reveals nothing about unknown tokens', async () => {
    const out = await api.graphql(LOGOUT, { input: { refreshToken: 'unknown' } });
    expect(out.data.logout.success).toBe(true);
  });
});

// Every access token that must fail gets a 401 with a JSON error before
// GraphQL runs; a good one reaches the database as the right role.
import { base64url, SignJWT } from 'jose';
import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePrivateJwk, loadSigningKeys } from '../src/auth/keys.ts';
import { signAccessToken, type TokenSettings } from '../src/auth/tokens.ts';
import { registerUser, startTestApi, type TestApi } from './helpers/api.ts';

let api: TestApi;
let session: Awaited<ReturnType<typeof registerUser>>;
let publicJwk: { kty: string; crv: string; x: string; kid: string };
beforeAll(async () => {
  const privateJwk = JSON.parse(await generatePrivateJwk());
  const { d: _d, ...rest } = privateJwk;
  publicJwk = rest;
  const tokens = { keys: await loadSigningKeys(JSON.stringify(privateJwk)), issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 900 };
  api = await startTestApi({ tokens });
  session = await registerUser(api, 'tokens');
});
afterAll(() => api.close());

const CURRENT_USER = '{ currentUser { rowId role } }';

/** The claims of the real session, re-signed or altered by each attack below. */
function claims(extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  const [, payload] = session.accessToken.split('.');
  const real = JSON.parse(Buffer.from(payload, 'base64url').toString());
  return { ...real, iat: now, exp: now + 600, ...extra };
}

async function signWith(settings: TokenSettings, payload: Record<string, unknown>) {
  return new SignJWT(payload).setProtectedHeader({ alg: settings.keys.alg, kid: settings.keys.kid }).sign(settings.keys.privateKey);
}

async function expect401(token: string, code = 'TOKEN_INVALID') {
  const result = await api.graphql(CURRENT_USER, {}, token);
  expect(result.status).toBe(401);
  expect(result.errors?.[0]?.extensions?.code).toBe(code);
  expect(result.data).toBeUndefined();
}

describe('access tokens', () => {
  it('a valid token reaches SQL as the signed-in user', async () => {
    const result = await api.graphql(CURRENT_USER, {}, session.accessToken);
    expect(result.status).toBe(200);
    expect(result.data.currentUser).toEqual({ rowId: session.user.rowId, role: 'user' });
  });

  it('no token means anonymous, which sees no user', async () => {
    const result = await api.graphql(CURRENT_USER);
    expect(result.status).toBe(200);
    expect(result.data.currentUser).toBeNull();
  });

  it('refuses a token signed by another key', async () => {
    const other = { ...api.tokens, keys: await loadSigningKeys(await generatePrivateJwk()) };
    await expect401(await signWith(other, claims()));
  });

  it('refuses a token signed by another key that reuses our kid', async () => {
    const jwk = JSON.parse(await generatePrivateJwk());
    const forged = { ...api.tokens, keys: await loadSigningKeys(JSON.stringify({ ...jwk, kid: api.tokens.keys.kid })) };
    await expect401(await signWith(forged, claims()));
  });

  it('refuses alg: none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const body = base64url.encode(JSON.stringify(claims()));
    await expect401(`${header}.${body}.`);
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    // The classic confusion attack: the verifier's public key, in every
    // encoding an attacker might guess, used as an HMAC secret.
    const spkiPem = createPublicKey({ key: publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    const secrets = [Buffer.from(publicJwk.x, 'base64url'), Buffer.from(publicJwk.x), Buffer.from(JSON.stringify(publicJwk)), Buffer.from(spkiPem)];
    for (const secret of secrets) {
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: api.tokens.keys.kid }).sign(secret);
      await expect401(token);
    }
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    await expect401(await signWith(api.tokens, claims({ iat: past - 900, exp: past })), 'TOKEN_EXPIRED');
  });

  it('refuses the wrong audience and the wrong issuer', async () => {
    await expect401(await signWith(api.tokens, claims({ aud: 'another-service' })));
    await expect401(await signWith(api.tokens, claims({ iss: 'https://evil.example' })));
  });

  it('refuses a token whose payload was edited to role app_admin', async () => {
    const [header, , signature] = session.accessToken.split('.');
    const tampered = base64url.encode(JSON.stringify(claims({ role: 'app_admin' })));
    await expect401(`${header}.${tampered}.${signature}`);
  });

  it('refuses correctly signed tokens naming a role outside the allow-list', async () => {
    for (const role of ['postgres', 'app_owner', 'authenticator', 'app_auditor']) {
      await expect401(await signWith(api.tokens, claims({ role })));
    }
  });

  it('refuses tokens missing sid or sub', async () => {
    const { sid: _sid, ...noSid } = claims();
    await expect401(await signWith(api.tokens, noSid));
    const { sub: _sub, ...noSub } = claims();
    await expect401(await signWith(api.tokens, noSub));
  });

  it('refuses garbage and a non-Bearer scheme', async () => {
    await expect401('not.a.jwt');
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      body: JSON.stringify({ query: CURRENT_USER }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('Bearer');
  });

  it('signs with EdDSA, a kid, and the claims the design requires', async () => {
    const [header, payload] = session.accessToken.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'EdDSA', kid: api.tokens.keys.kid });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'role', 'sid', 'sub']);
    expect(payload.exp - payload.iat).toBe(900);
    const fresh = await signAccessToken(api.tokens, { userId: session.user.rowId, role: 'app_user', sessionId: payload.sid });
    expect((await api.graphql(CURRENT_USER, {}, fresh.token)).data.currentUser.rowId).toBe(session.user.rowId);
  });
});

describe('verified-token cache', () => {
  it('still refuses a token once it has expired, even after it was accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const shortLived = await signWith(api.tokens, claims({ iat: now, exp: now + 2 }));
    expect((await api.graphql(CURRENT_USER, {}, shortLived)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await expect401(shortLived, 'TOKEN_EXPIRED');
  });

  it('does not let a tampered copy of an accepted token through', async () => {
    expect((await api.graphql(CURRENT_USER, {}, session.accessToken)).status).toBe(200);
    const [header, , signature] = session.accessToken.split('.');
    await expect401(`${header}.${base64url.encode(JSON.stringify(claims({ role: 'app_admin' })))}.${signature}`);
  });
});

// Access tokens: short-lived JWTs signed with an asymmetric key. Verification
// pins algorithms, issuer and audience, so `alg: none`, HS256-with-the-public-
// key and tokens for other services are all refused.
import { errors, jwtVerify, SignJWT } from 'jose';
import { SIGNING_ALGORITHMS, type SigningKeys } from './keys.ts';

/** The database roles a token may name; anything else is refused. */
export const TOKEN_ROLES = ['app_user', 'app_admin'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export interface AccessClaims {
  sub: string;
  role: TokenRole;
  sid: string;
  iss: string;
  aud: string;
  exp: number;
  iat: number;
}

export interface TokenSettings {
  keys: SigningKeys;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export function roleForUser(userRole: string): TokenRole {
  return userRole === 'admin' ? 'app_admin' : 'app_user';
}

export async function signAccessToken(
  settings: TokenSettings,
  subject: { userId: string; role: TokenRole; sessionId: string },
): Promise<{ token: string; expiresAt: Date }> {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + settings.ttlSeconds;
  const token = await new SignJWT({ role: subject.role, sid: subject.sessionId })
    .setProtectedHeader({ alg: settings.keys.alg, kid: settings.keys.kid, typ: 'JWT' })
    .setSubject(subject.userId)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(settings.keys.privateKey);
  return { token, expiresAt: new Date(exp * 1000) };
}

export class TokenRejected extends Error {
  readonly code: 'TOKEN_EXPIRED' | 'TOKEN_INVALID';
  constructor(code: 'TOKEN_EXPIRED' | 'TOKEN_INVALID', message: string) {
    super(message);
    this.code = code;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function verifyAccessToken(settings: TokenSettings, token: string): Promise<AccessClaims> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, settings.keys.verificationKeys, {
      algorithms: [...SIGNING_ALGORITHMS],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['exp', 'sub', 'sid', 'role', 'iat'],
    }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new TokenRejected('TOKEN_EXPIRED', 'The access token has expired; refresh the session.');
    throw new TokenRejected('TOKEN_INVALID', 'The access token is not valid.');
  }
  const { sub, sid, role } = payload as Partial<AccessClaims>;
  if (!sub || !UUID.test(sub) || !sid || !UUID.test(sid) || !TOKEN_ROLES.includes(role as TokenRole)) {
    throw new TokenRejected('TOKEN_INVALID', 'The access token is not valid.');
  }
  return payload as unknown as AccessClaims;
}

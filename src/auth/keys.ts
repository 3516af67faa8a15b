// Access-token keys. Production takes them from the environment
// (JWT_PRIVATE_JWK, optionally JWT_PUBLIC_JWKS for rotation); development
// generates an Ed25519 key once and keeps it in the data folder.
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type JWK, type JSONWebKeySet } from 'jose';
import { randomUUID } from 'node:crypto';

export const SIGNING_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface SigningKeys {
  alg: SigningAlgorithm;
  kid: string;
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  /** Verifier over every accepted public key, found by `kid`. */
  verificationKeys: ReturnType<typeof createLocalJWKSet>;
}

export async function generatePrivateJwk(): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ ...jwk, alg: 'EdDSA', kid: randomUUID(), use: 'sig' });
}

function publicHalf(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = jwk;
  return rest;
}

export async function loadSigningKeys(privateJwkJson: string, publicJwksJson?: string): Promise<SigningKeys> {
  const jwk = JSON.parse(privateJwkJson) as JWK;
  const alg = jwk.alg as SigningAlgorithm;
  if (!SIGNING_ALGORITHMS.includes(alg)) {
    throw new Error(`JWT_PRIVATE_JWK must be an EdDSA or ES256 key with "alg" set, got ${String(jwk.alg)}.`);
  }
  if (!jwk.kid) throw new Error('JWT_PRIVATE_JWK must carry a "kid" so keys can be rotated.');
  const jwks: JSONWebKeySet = publicJwksJson ? (JSON.parse(publicJwksJson) as JSONWebKeySet) : { keys: [] };
  if (!jwks.keys.some((key) => key.kid === jwk.kid)) jwks.keys.push(publicHalf(jwk));
  return {
    alg,
    kid: jwk.kid,
    privateKey: await importJWK(jwk, alg),
    verificationKeys: createLocalJWKSet(jwks),
  };
}

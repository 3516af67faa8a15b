// Revio's webhook signature (REVIO_API.md §4): X-Signature is the base64 RSA
// PKCS#1 v1.5 signature over the SHA-256 digest of the raw body bytes. Verify
// the bytes exactly as received, before parsing JSON. RSA verification
// recomputes and compares inside OpenSSL, so there is no early-exit string
// comparison to time.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses a PEM (SPKI or PKCS#1) public key once, for repeated verification. */
export function loadPublicKey(pem: string | KeyObject): KeyObject {
  return typeof pem === 'string' ? createPublicKey(pem) : pem;
}

/**
 * True only when `signature` (the X-Signature header) is a valid signature of
 * `rawBody` by `publicKey`. Never throws on a missing or malformed header.
 */
export function verifyRevioSignature(rawBody: Uint8Array, signature: string | string[] | null | undefined, publicKey: string | KeyObject): boolean {
  if (typeof signature !== 'string') return false;
  const trimmed = signature.trim();
  if (trimmed.length === 0 || trimmed.length > 4096 || !BASE64.test(trimmed)) return false;
  try {
    return verify('sha256', rawBody, loadPublicKey(publicKey), Buffer.from(trimmed, 'base64'));
  } catch {
    return false;
  }
}

/** Signs a body as Revio does (the sandbox and tests use this). */
export function signRevioBody(rawBody: Uint8Array | string, privateKey: string | KeyObject): string {
  return sign('sha256', typeof rawBody === 'string' ? Buffer.from(rawBody) : rawBody, privateKey).toString('base64');
}

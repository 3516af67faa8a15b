// Remembers tokens that already passed full verification, until they expire.
// A client sends the same access token with every request for 15 minutes, and
// an EdDSA check costs about a tenth of the API's CPU per GraphQL call.
// Only successes are kept, keyed by the whole token string (so any changed
// byte misses), and an entry is never used past its `exp`. Revocation does
// not depend on this: SQL checks the session on every request.
import type { AccessClaims } from './tokens.ts';

export class VerifiedTokenCache {
  readonly #entries = new Map<string, AccessClaims>();
  readonly #capacity: number;

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  get(token: string, nowSeconds = Date.now() / 1000): AccessClaims | undefined {
    const claims = this.#entries.get(token);
    if (claims && claims.exp <= nowSeconds) {
      this.#entries.delete(token);
      return undefined;
    }
    return claims;
  }

  set(token: string, claims: AccessClaims): void {
    // Map keeps insertion order: when full, forget the oldest entry.
    if (this.#entries.size >= this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(token, claims);
  }
}

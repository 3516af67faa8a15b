// The key that verifies Revio's signatures: configured (REVIO_PUBLIC_KEY), or
// fetched once from GET /public_key/ and cached. A failed fetch is not cached,
// so the next delivery tries again.
import type { KeyObject } from 'node:crypto';
import type { RevioClient } from './client.ts';
import { loadPublicKey } from './signature.ts';

export interface PublicKeySource {
  get(): Promise<KeyObject>;
}

export function publicKeySource(client: Pick<RevioClient, 'getPublicKey'>, configuredPem?: string): PublicKeySource {
  let cached: Promise<KeyObject> | undefined = configuredPem ? Promise.resolve(loadPublicKey(configuredPem)) : undefined;
  return {
    get() {
      if (!cached) {
        cached = client.getPublicKey().then(loadPublicKey);
        cached.catch(() => {
          cached = undefined;
        });
      }
      return cached;
    },
  };
}

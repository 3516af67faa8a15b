// Revio settings from the environment. Without REVIO_API_KEY the caller is
// expected to start the sandbox (src/revio-sandbox) and point the client at it.
import { REVIO_API_URL } from './client.ts';

export interface RevioSettings {
  /** REVIO_API_URL, default https://gate.reviopay.com/api/v1/. */
  baseUrl: string;
  /** REVIO_API_KEY; undefined means "use the sandbox". */
  apiKey: string | undefined;
  /** REVIO_BRAND_ID. */
  brandId: string | undefined;
  /** REVIO_PUBLIC_KEY (PEM); undefined means fetch GET /public_key/ once and cache it. */
  publicKeyPem: string | undefined;
  /** REVIO_CURRENCY, default ZAR. */
  currency: string;
  /** REVIO_TIMEOUT_MS, default 10000. */
  timeoutMs: number;
}

export function revioSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RevioSettings {
  const timeout = env.REVIO_TIMEOUT_MS ? Number(env.REVIO_TIMEOUT_MS) : 10_000;
  if (!Number.isInteger(timeout) || timeout <= 0) throw new RangeError(`REVIO_TIMEOUT_MS must be a positive integer, got "${env.REVIO_TIMEOUT_MS}".`);
  return {
    baseUrl: env.REVIO_API_URL || REVIO_API_URL,
    apiKey: env.REVIO_API_KEY || undefined,
    brandId: env.REVIO_BRAND_ID || undefined,
    // Environment variables often carry PEMs with literal "\n".
    publicKeyPem: env.REVIO_PUBLIC_KEY ? env.REVIO_PUBLIC_KEY.replace(/\\n/g, '\n') : undefined,
    currency: (env.REVIO_CURRENCY || 'ZAR').toUpperCase(),
    timeoutMs: timeout,
  };
}

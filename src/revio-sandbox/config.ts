// Sandbox settings from the environment (for `npm run sandbox` and main.ts).
import { resolve } from 'node:path';
import type { SandboxFaultsInput } from './faults.ts';
import type { RevioSandboxOptions } from './server.ts';

function number(name: string, raw: string | undefined, fallback: number | undefined, positive = false): number | undefined {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (positive && value === 0)) throw new RangeError(`${name} must be a ${positive ? 'positive' : 'non-negative'} number, got "${raw}".`);
  return value;
}

/**
 * REVIO_SANDBOX_PORT (4010), REVIO_SANDBOX_HOST (127.0.0.1), REVIO_SANDBOX_PUBLIC_URL,
 * REVIO_SANDBOX_API_KEY, REVIO_SANDBOX_BRAND_ID, REVIO_SANDBOX_STATE_FILE
 * (default <PGWALLET_DATA_DIR or .data>/revio-sandbox.json; "none" keeps state in memory only),
 * REVIO_SANDBOX_PRIVATE_KEY (PEM), REVIO_SANDBOX_TIME_SCALE (1),
 * REVIO_SANDBOX_DELIVERY_TIMEOUT_MS (15000), REVIO_SANDBOX_PAYOUT_AUTO_COMPLETE_MS (unset: by hand),
 * REVIO_SANDBOX_FEE_BPS (0: Revio's fee on paid purchases, in basis points),
 * REVIO_SANDBOX_WEBHOOK_URL (register an all-events webhook at start),
 * REVIO_SANDBOX_FAULTS (JSON, as PUT /_sandbox/faults takes).
 */
export function sandboxOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RevioSandboxOptions {
  const stateFile = env.REVIO_SANDBOX_STATE_FILE === 'none' ? undefined : resolve(env.REVIO_SANDBOX_STATE_FILE || `${env.PGWALLET_DATA_DIR || '.data'}/revio-sandbox.json`);
  let faults: SandboxFaultsInput | undefined;
  if (env.REVIO_SANDBOX_FAULTS) {
    try {
      faults = JSON.parse(env.REVIO_SANDBOX_FAULTS) as SandboxFaultsInput;
    } catch {
      throw new RangeError('REVIO_SANDBOX_FAULTS must be JSON like {"endpoints":{"createPayout":{"errorRate":0.2}}}.');
    }
  }
  return {
    port: number('REVIO_SANDBOX_PORT', env.REVIO_SANDBOX_PORT, 4010),
    host: env.REVIO_SANDBOX_HOST || '127.0.0.1',
    publicUrl: env.REVIO_SANDBOX_PUBLIC_URL || undefined,
    apiKey: env.REVIO_SANDBOX_API_KEY || undefined,
    brandId: env.REVIO_SANDBOX_BRAND_ID || undefined,
    stateFile,
    privateKeyPem: env.REVIO_SANDBOX_PRIVATE_KEY || undefined,
    timeScale: number('REVIO_SANDBOX_TIME_SCALE', env.REVIO_SANDBOX_TIME_SCALE, 1, true),
    deliveryTimeoutMs: number('REVIO_SANDBOX_DELIVERY_TIMEOUT_MS', env.REVIO_SANDBOX_DELIVERY_TIMEOUT_MS, 15_000, true),
    payoutAutoCompleteMs: number('REVIO_SANDBOX_PAYOUT_AUTO_COMPLETE_MS', env.REVIO_SANDBOX_PAYOUT_AUTO_COMPLETE_MS, undefined),
    feeBps: number('REVIO_SANDBOX_FEE_BPS', env.REVIO_SANDBOX_FEE_BPS, 0),
    webhooks: env.REVIO_SANDBOX_WEBHOOK_URL ? [{ callback: env.REVIO_SANDBOX_WEBHOOK_URL, title: 'REVIO_SANDBOX_WEBHOOK_URL' }] : undefined,
    faults,
  };
}

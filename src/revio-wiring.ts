// Revio for `npm start`: real Revio when REVIO_API_KEY is set, otherwise the
// sandbox, started in this process. Either way the worker gets a client, the
// webhook route a key source (REVIO_PUBLIC_KEY, or GET /public_key/ fetched
// once and cached), and a webhook is registered for the API's
// /webhooks/revio once the API listens.
import type { Logger } from 'pino';
import { ConfigError } from './config.ts';
import { portIsFree } from './db/embedded.ts';
import { REVIO_WEBHOOK_PATH } from './http/webhooks/revio.ts';
import { createRevioClient, publicKeySource, revioSettingsFromEnv, type PublicKeySource, type RevioClient } from './revio/index.ts';
import { sandboxOptionsFromEnv, startRevioSandbox, type RevioSandbox } from './revio-sandbox/index.ts';
import { DEFAULT_SANDBOX_API_KEY, DEFAULT_SANDBOX_BRAND_ID } from './revio-sandbox/server.ts';

export interface RevioWiring {
  client: RevioClient;
  publicKey: PublicKeySource;
  /** Present when the sandbox runs in this process. */
  sandbox?: RevioSandbox;
  /** Makes sure Revio posts every event to `${apiBaseUrl}/webhooks/revio`; returns that URL. */
  registerWebhook(apiBaseUrl: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * In production pgwallet talks to real Revio only: REVIO_API_KEY and
 * REVIO_BRAND_ID are required (without them npm start would run the sandbox
 * in-process, which then "pays" every checkout), and the sandbox's published
 * key or brand is refused unless REVIO_ALLOW_SANDBOX=true says, on purpose,
 * that this is a demo against the compose network's sandbox service.
 */
export function assertProductionRevio(env: NodeJS.ProcessEnv): void {
  if (env.NODE_ENV !== 'production') return;
  if (!env.REVIO_API_KEY || !env.REVIO_BRAND_ID) {
    throw new ConfigError('In production REVIO_API_KEY and REVIO_BRAND_ID are required: pgwallet never runs the Revio sandbox in-process there.');
  }
  // The sandbox's published credentials (README): anyone may know them.
  const sandboxCredentials = env.REVIO_API_KEY === DEFAULT_SANDBOX_API_KEY || env.REVIO_BRAND_ID === DEFAULT_SANDBOX_BRAND_ID;
  if (sandboxCredentials && env.REVIO_ALLOW_SANDBOX !== 'true') {
    throw new ConfigError('REVIO_API_KEY / REVIO_BRAND_ID are the Revio sandbox\'s published credentials; set real Revio settings (or REVIO_ALLOW_SANDBOX=true for a demo).');
  }
}

export async function startRevio(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RevioWiring> {
  assertProductionRevio(env);
  const settings = revioSettingsFromEnv(env);
  const log = logger.child({ component: 'revio' });
  let sandbox: RevioSandbox | undefined;
  let client: RevioClient;
  if (settings.apiKey) {
    if (!settings.brandId) throw new ConfigError('REVIO_BRAND_ID is required with REVIO_API_KEY.');
    client = createRevioClient({ baseUrl: settings.baseUrl, apiKey: settings.apiKey, brandId: settings.brandId, currency: settings.currency, timeoutMs: settings.timeoutMs, logger: log });
  } else {
    const options = sandboxOptionsFromEnv(env);
    // The default port may be taken (another checkout running); any port will do then.
    if (!env.REVIO_SANDBOX_PORT && options.port && !(await portIsFree(options.port, options.host))) options.port = 0;
    sandbox = await startRevioSandbox({ ...options, logger: log });
    client = createRevioClient({ baseUrl: sandbox.apiUrl, apiKey: sandbox.apiKey, brandId: sandbox.brandId, currency: settings.currency, timeoutMs: settings.timeoutMs, logger: log });
  }
  return {
    client,
    publicKey: publicKeySource(client, settings.publicKeyPem),
    sandbox,
    async registerWebhook(apiBaseUrl) {
      const callback = `${apiBaseUrl.replace(/\/$/, '')}${REVIO_WEBHOOK_PATH}`;
      const existing = await client.listWebhooks();
      if (!existing.some((w) => w.callback === callback)) {
        await client.createWebhook({ title: 'pgwallet', callback, allEvents: true });
        log.info({ callback }, 'registered the Revio webhook');
      }
      return callback;
    },
    async close() {
      await sandbox?.close();
    },
  };
}

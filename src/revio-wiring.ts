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

export interface RevioWiring {
  client: RevioClient;
  publicKey: PublicKeySource;
  /** Present when the sandbox runs in this process. */
  sandbox?: RevioSandbox;
  /** Makes sure Revio posts every event to `${apiBaseUrl}/webhooks/revio`; returns that URL. */
  registerWebhook(apiBaseUrl: string): Promise<string>;
  close(): Promise<void>;
}

export async function startRevio(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RevioWiring> {
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

// The real API (Express + PostGraphile, production mode) with the Revio
// webhook route, in its own process, for `npm run bench:webhooks`. The key
// that verifies signatures comes from BENCH_PUBLIC_KEY (as REVIO_PUBLIC_KEY
// would). Prints {"url"} when ready and stops on SIGTERM.
import '../../src/graphile-env.ts';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { makePool } from '../../src/db/pools.ts';
import { startApi } from '../../src/http/app.ts';
import { makeLogger } from '../../src/logger.ts';
import { paymentSettingsFromEnv } from '../../src/payments/config.ts';
import { loadPublicKey } from '../../src/revio/index.ts';

const logger = makeLogger(process.env.BENCH_LOG_LEVEL ?? 'silent');
const authPool = makePool(process.env.BENCH_AUTH_URL!, 'bench-api', logger, Number(process.env.BENCH_POOL ?? 16));
const key = loadPublicKey(process.env.BENCH_PUBLIC_KEY!);
const api = await startApi({
  host: '127.0.0.1',
  port: 0,
  authPool,
  tokens: { keys: await loadSigningKeys(await generatePrivateJwk()), issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 3600 },
  logger,
  development: false,
  bodyLimitBytes: 100_000,
  revioWebhook: { publicKey: { get: async () => key }, bodyLimitBytes: paymentSettingsFromEnv().webhookBodyLimitBytes },
});
process.stdout.write(`${JSON.stringify({ url: api.url })}\n`);
process.once('SIGTERM', async () => {
  await api.close();
  await authPool.end();
  process.exit(0);
});

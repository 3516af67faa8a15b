// The real API (Express + PostGraphile, production mode) with the Revio
// webhook route, in its own process, for `npm run bench:webhooks`. The key
// that verifies signatures comes from BENCH_PUBLIC_KEY (as REVIO_PUBLIC_KEY
// would). Prints {"url"} when ready and stops on SIGTERM. BENCH_WEB_CONCURRENCY
// (WEB_CONCURRENCY here) runs it as a cluster.
import '../../src/graphile-env.ts';
import cluster from 'node:cluster';
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { makePool } from '../../src/db/pools.ts';
import { startApi } from '../../src/http/app.ts';
import { superviseCluster, webConcurrencyFrom } from '../../src/http/cluster.ts';
import { makeLogger } from '../../src/logger.ts';
import { paymentSettingsFromEnv } from '../../src/payments/config.ts';
import { loadPublicKey } from '../../src/revio/index.ts';

// WEB_CONCURRENCY > 1: several processes on one port, as `npm start` runs them
// (BENCH_POOL connections in all).
if (cluster.isPrimary && webConcurrencyFrom() > 1) {
  await superviseCluster(webConcurrencyFrom(), makeLogger('info')); // restarts are logged
} else {
  await serve();
}

async function serve() {
  const logger = makeLogger(process.env.BENCH_LOG_LEVEL ?? 'silent');
  const authPool = makePool(process.env.BENCH_AUTH_URL!, 'bench-api', logger, Math.ceil(Number(process.env.BENCH_POOL ?? 16) / webConcurrencyFrom()));
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
}

// The real API (Express + PostGraphile, production mode) in its own process,
// for the GraphQL case of the ledger benchmark. Prints {"url"} when ready and
// stops on SIGTERM. Settings come from the benchmark through the environment.
// Production code paths: info-level request logging (to stdout, which the
// benchmark reads and discards) and the rate limiter on, counting every
// request, with limits above what one benchmark client address sends.
import '../../src/graphile-env.ts';
import cluster from 'node:cluster';
import { loadSigningKeys } from '../../src/auth/keys.ts';
import { makePool } from '../../src/db/pools.ts';
import { startApi } from '../../src/http/app.ts';
import { superviseCluster, webConcurrencyFrom } from '../../src/http/cluster.ts';
import { apiLimitsFromEnv } from '../../src/http/limits-config.ts';
import { makeLogger } from '../../src/logger.ts';

const logger = makeLogger(process.env.BENCH_LOG_LEVEL ?? 'info');
// WEB_CONCURRENCY > 1: as `npm start` does, several processes on one port
// (port 0 in a cluster: every worker gets the same one; each prints it).
if (cluster.isPrimary && webConcurrencyFrom() > 1) {
  await superviseCluster(webConcurrencyFrom(), makeLogger('info')); // restarts are logged
} else {
  await serve();
}

async function serve() {
  const authPool = makePool(process.env.BENCH_AUTH_URL!, 'bench-api', logger, Math.ceil(Number(process.env.BENCH_CLIENTS ?? 16) / webConcurrencyFrom())); // 16 connections in all
  const high = 1_000_000_000;
  const api = await startApi({
    host: '127.0.0.1',
    port: 0,
    authPool,
    tokens: { keys: await loadSigningKeys(process.env.BENCH_JWK!), issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 3600 },
    logger,
    development: false,
    bodyLimitBytes: 100_000,
    limits: { ...apiLimitsFromEnv(), rate: { windowSeconds: 60, perIp: high, perUser: high, authPerIp: high, moneyPerUser: high } },
  });
  process.stdout.write(`${JSON.stringify({ url: api.url })}\n`);
  process.once('SIGTERM', async () => {
    await api.close();
    await authPool.end();
    process.exit(0);
  });
}

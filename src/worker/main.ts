// `npm run worker` (node src/worker/main.ts): the job worker alone, to scale it
// apart from the API (docker-compose `worker` service; the API then runs with
// IN_PROCESS_WORKER=false). It needs WORKER_DATABASE_URL (app_worker) and a Revio to
// talk to (REVIO_API_KEY with REVIO_BRAND_ID, and REVIO_API_URL for the
// sandbox run as its own service). It serves /metrics and /health on
// WORKER_METRICS_PORT (default 9464; METRICS_HOST, METRICS_TOKEN as for the
// API): job counts and durations, its pool and the Node.js process. Queue
// depth, dead letters and the ledger gauges come from the API's /metrics.
import '../graphile-env.ts';
import { runCli } from '../cli/run-cli.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { makeLogger } from '../logger.ts';
import { metricsSettingsFrom, startMetricsServer } from '../metrics/http.ts';
import { createMetrics } from '../metrics/registry.ts';
import { paymentSettingsFromEnv } from '../payments/config.ts';
import { bankAccountKeyFor } from '../payments/local-keys.ts';
import { startRevio } from '../revio-wiring.ts';
import { startWorker } from './runner.ts';

await runCli(async () => {
  // The API's settings (AUTH_DATABASE_URL, JWT keys) do not concern the worker.
  const config = loadConfig({ ...process.env, AUTH_DATABASE_URL: 'unused-by-the-worker', JWT_PRIVATE_JWK: 'unused-by-the-worker' });
  const logger = makeLogger(config.logLevel).child({ process: 'worker' });
  // When PostgreSQL restarts, graphile-worker can leave a rejected promise that
  // nothing awaits (a failed batch of job completions). Node would end the
  // process for it; here the runner is restarted instead (src/worker/runner.ts)
  // and job state lives in the database, so log it and carry on.
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: { message: String((reason as Error)?.message ?? reason) } }, 'unhandled rejection in the worker (runner restarts if it stopped)');
  });
  if (!config.workerDatabaseUrl) throw new ConfigError('WORKER_DATABASE_URL (the app_worker role; never the owner) is required to run the worker on its own.');
  if (!process.env.REVIO_API_KEY) {
    throw new ConfigError('REVIO_API_KEY (with REVIO_BRAND_ID and REVIO_API_URL) is required to run the worker on its own; for the sandbox, run `npm run sandbox` and point REVIO_API_URL at it.');
  }
  const payments = paymentSettingsFromEnv();
  const revio = await startRevio(logger);
  const metrics = createMetrics();
  const worker = await startWorker({
    connectionString: config.workerDatabaseUrl,
    logger,
    metrics,
    revio: { client: revio.client, payments, bankAccountKey: bankAccountKeyFor(config) },
  });
  const settings = metricsSettingsFrom();
  const rawPort = process.env.WORKER_METRICS_PORT;
  const port = rawPort === undefined || rawPort === '' ? 9464 : Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`WORKER_METRICS_PORT must be a port number, got "${rawPort}".`);
  const server = await startMetricsServer(metrics, { host: settings.host, port, token: settings.token });
  console.log(`pgwallet worker is running; metrics at ${server.url}/metrics`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'worker shutting down: finishing running jobs');
    await worker.stop();
    await server.close();
    await revio.close();
    logger.info('worker stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
});

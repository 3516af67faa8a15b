// The HTTP server: logging, security headers, health, bearer auth, GraphQL.
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'pg';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import { postgraphile } from 'postgraphile';
import { grafserv } from 'postgraphile/grafserv/express/v4';
import type { TokenSettings } from '../auth/tokens.ts';
import { StartupError } from '../db/embedded.ts';
import { addToLogContext, runWithLogContext } from '../log-context.ts';
import { ledgerCheckIntervalFrom, registerDatabaseMetrics } from '../metrics/database.ts';
import { graphqlRejectedCounter } from '../metrics/graphql.ts';
import { httpMetricsMiddleware, metricsHandler, metricsSettingsFrom, startMetricsServer, type MetricsServer, type MetricsSettings } from '../metrics/http.ts';
import { createMetrics, type Metrics } from '../metrics/registry.ts';
import { bodyParserErrors, cors, graphqlBodyParsers, graphqlGuards, limitOtherBodies } from './abuse.ts';
import { bearerAuth } from './bearer-auth.ts';
import { makePreset } from './graphql/preset.ts';
import { healthRoutes } from './health.ts';
import { apiLimitsFromEnv, type ApiLimits } from './limits-config.ts';
import type { PaymentsPluginOptions } from './graphql/payments-plugin.ts';
import { REVIO_WEBHOOK_PATH, revioWebhookRoutes, type RevioWebhookOptions } from './webhooks/revio.ts';

export interface ApiOptions {
  host: string;
  port: number;
  authPool: Pool;
  tokens: TokenSettings;
  logger: Logger;
  development: boolean;
  bodyLimitBytes: number;
  watchConnectionString?: string;
  payments?: PaymentsPluginOptions & { pgSettings?: Record<string, string> };
  /** Mounts POST /webhooks/revio (its SQL call goes through authPool). */
  revioWebhook?: Omit<RevioWebhookOptions, 'pool'>;
  /** Absolute session lifetime for refreshSession, in seconds (default: SESSION_MAX_AGE_DAYS). */
  sessionMaxAgeSeconds?: number;
  /** Rate limits, GraphQL caps, CORS, proxy trust (default: from the environment, src/http/limits-config.ts). */
  limits?: ApiLimits;
  /** The process's metrics registry (shared with an in-process worker); a new one if absent. */
  metrics?: Metrics;
  /** How /metrics is protected (default: from METRICS_* in the environment). */
  metricsSettings?: MetricsSettings;
  /** Seconds between ledger invariant checks for /metrics (default: METRICS_LEDGER_CHECK_INTERVAL_SECONDS). */
  ledgerCheckIntervalSeconds?: number;
}

export interface Api {
  server: Server;
  url: string;
  metrics: Metrics;
  /** Where /metrics is served when it has a port of its own (METRICS_PORT). */
  metricsUrl?: string;
  /** Stops accepting requests, lets in-flight ones finish, releases PostGraphile. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

function securityHeaders(development: boolean) {
  if (!development) return helmet();
  // Ruru (GraphiQL) is an inline-script page; only development serves it.
  return helmet({
    contentSecurityPolicy: {
      directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'worker-src': ["'self'", 'blob:'] },
    },
  });
}

/**
 * Refuses declared-too-large bodies before reading them, with a coded JSON
 * error. (grafserv's maxRequestLength still stops undeclared, chunked ones.)
 */
function rejectLargeBodies(limit: number) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (Number(req.headers['content-length'] ?? 0) <= limit) return next();
    res.status(413).set('connection', 'close').json({
      errors: [{ message: `The request body is larger than ${limit} bytes.`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new StartupError(`Port ${port} is already in use, so the API cannot listen; stop the other process or set PORT.`)
          : error,
      );
    });
    server.listen(port, host, () => resolve());
  });
}

export async function startApi(options: ApiOptions): Promise<Api> {
  const app = express();
  app.disable('x-powered-by');
  const limits = options.limits ?? apiLimitsFromEnv();
  if (limits.trustProxy !== undefined) app.set('trust proxy', limits.trustProxy);
  const metrics = options.metrics ?? createMetrics();
  metrics.addPool('api', options.authPool);
  registerDatabaseMetrics(metrics, {
    pool: options.authPool,
    logger: options.logger,
    ledgerCheckIntervalSeconds: options.ledgerCheckIntervalSeconds ?? ledgerCheckIntervalFrom(),
  });
  const metricsSettings = options.metricsSettings ?? metricsSettingsFrom();
  app.use(httpMetricsMiddleware(metrics));
  app.use(
    pinoHttp({
      logger: options.logger,
      // Log what identifies a request, not every header (headers can carry credentials).
      serializers: {
        req: (req) => ({ id: req.id, method: req.method, url: req.url, remoteAddress: req.remoteAddress }),
        res: (res) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      // Reuse a caller's request id (e.g. from a proxy) when it looks sane.
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      // The signed-in user on the request's completion line.
      customProps: (req) => ((req as Request).auth?.sub ? { userId: (req as Request).auth!.sub } : {}),
    }),
  );
  // Every line logged while handling the request carries its id (and, once the token is verified, the user's).
  app.use((req: Request, _res: Response, next: NextFunction) => runWithLogContext({ requestId: String(req.id) }, next));
  app.use(securityHeaders(options.development || limits.ruru));
  app.use(cors(limits.corsOrigins));
  app.use(limitOtherBodies(limits.otherBodyLimitBytes, ['/graphql', REVIO_WEBHOOK_PATH]));
  app.use(healthRoutes(options.authPool));
  if (metricsSettings.enabled && metricsSettings.port === undefined) app.get('/metrics', metricsHandler(metrics, metricsSettings.token));
  else if (!metricsSettings.enabled) options.logger.warn('/metrics is off: in production set METRICS_TOKEN or METRICS_PORT (docs/observability.md).');
  if (options.revioWebhook) app.use(revioWebhookRoutes({ pool: options.authPool, metrics, ...options.revioWebhook }));
  app.use('/graphql', graphqlRejectedCounter(metrics), rejectLargeBodies(options.bodyLimitBytes), bearerAuth(options.tokens), (req: Request, _res: Response, next: NextFunction) => {
    if (req.auth?.sub) addToLogContext({ userId: req.auth.sub });
    next();
  });
  // After the token is verified: read the body, count the request against its rate limits, cap variable page sizes.
  app.use('/graphql', ...graphqlBodyParsers(options.bodyLimitBytes), ...graphqlGuards(options.authPool, limits, options.logger));

  const server = createServer(app);
  const preset = makePreset({ ...options, metrics, limits });
  const pgl = postgraphile(preset);
  // pgl.release() leaves the services' LISTEN client (used by schema watch and
  // subscriptions) checked out of our pool, so pool.end() would wait forever.
  const release = async () => {
    await pgl.release();
    for (const service of preset.pgServices ?? []) await service.release?.();
  };
  await pgl.createServ(grafserv).addTo(app, server);

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ errors: [{ message: 'Not found.', extensions: { code: 'NOT_FOUND' } }] });
  });
  app.use(bodyParserErrors);
  app.use((error: Error, req: Request, res: Response, _next: NextFunction) => {
    const errorId = String(req.id ?? randomUUID());
    req.log.error({ err: { message: error.message, stack: error.stack }, errorId }, 'unhandled HTTP error');
    res.status(500).json({ errors: [{ message: `An unexpected error occurred (error id ${errorId}).`, extensions: { code: 'INTERNAL_ERROR', errorId } }] });
  });

  let metricsServer: MetricsServer | undefined;
  try {
    await listen(server, options.host, options.port);
    if (metricsSettings.enabled && metricsSettings.port !== undefined) {
      metricsServer = await startMetricsServer(metrics, { host: metricsSettings.host, port: metricsSettings.port, token: metricsSettings.token });
    }
  } catch (error) {
    server.close();
    await release(); // stops schema watching, which would otherwise outlive us
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const hostForUrl = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    server,
    url: `http://${hostForUrl}:${port}`,
    metrics,
    metricsUrl: metricsServer?.url,
    async close() {
      await metricsServer?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive sockets would hold close() open for their idle timeout; drop
      // each one as soon as its in-flight request has been answered.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      await closed;
      clearInterval(sweep);
      await release();
    },
  };
}

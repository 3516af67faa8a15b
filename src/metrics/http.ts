// The HTTP side of metrics: a request-duration middleware labelled by route
// pattern (never the raw URL), and the /metrics handler, which is protected
// one of two ways (docs/observability.md):
// - METRICS_TOKEN: /metrics answers only `Authorization: Bearer <token>`;
// - METRICS_PORT: /metrics is served on its own listener (METRICS_HOST,
//   default 127.0.0.1) and not on the public port at all.
// Both may be set. In production with neither, /metrics is not served.
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from './registry.ts';

export interface MetricsSettings {
  /** Bearer token required on /metrics (undefined: none). */
  token: string | undefined;
  /** Serve /metrics on this port instead of the API's (undefined: the API's port). */
  port: number | undefined;
  host: string;
  /** Whether /metrics is served at all (false: production with neither a token nor a port). */
  enabled: boolean;
}

export function metricsSettingsFrom(env: NodeJS.ProcessEnv = process.env): MetricsSettings {
  const token = env.METRICS_TOKEN || undefined;
  if (token !== undefined && token.length < 16) throw new Error('METRICS_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 24`).');
  const rawPort = env.METRICS_PORT;
  let port: number | undefined;
  if (rawPort !== undefined && rawPort !== '') {
    port = Number(rawPort);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`METRICS_PORT must be a port number, got "${rawPort}".`);
  }
  const production = (env.NODE_ENV ?? 'development') === 'production';
  return { token, port, host: env.METRICS_HOST || '127.0.0.1', enabled: !production || token !== undefined || port !== undefined };
}

const KNOWN_ROUTES = new Set(['/graphql', '/graphiql', '/webhooks/revio', '/health', '/ready', '/metrics']);
const METHODS = new Set(['GET', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'DELETE']);

/** The route pattern a request counts under: known paths as themselves, everything else in one bucket. */
export function routeLabel(path: string): string {
  if (KNOWN_ROUTES.has(path)) return path;
  if (path.startsWith('/ruru-static/')) return '/ruru-static/*';
  return 'unmatched';
}

/** Times every request from the first middleware to the last byte. */
export function httpMetricsMiddleware(metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const method = METHODS.has(req.method) ? req.method : 'other';
      end({ method, route: routeLabel(req.path), status_code: String(res.statusCode) });
    });
    next();
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function authorised(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  // Compare digests so neither the length nor the content leaks through timing.
  return match !== null && timingSafeEqual(digest(match[1]), digest(token));
}

/** GET /metrics in Prometheus text format. */
export function metricsHandler(metrics: Metrics, token: string | undefined) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (!authorised(req.headers.authorization, token)) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Bearer realm="metrics"');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ errors: [{ message: 'A valid metrics bearer token is required.', extensions: { code: 'METRICS_UNAUTHORIZED' } }] }));
      return;
    }
    try {
      const body = await metrics.registry.metrics();
      res.statusCode = 200;
      res.setHeader('content-type', metrics.registry.contentType);
      res.setHeader('cache-control', 'no-store');
      res.end(body);
    } catch (error) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain');
      res.end(`metrics collection failed: ${(error as Error).message}\n`);
    }
  };
}

export interface MetricsServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** A listener of its own for /metrics (and /health), for METRICS_PORT or a worker-only process. */
export async function startMetricsServer(metrics: Metrics, options: { host: string; port: number; token: string | undefined }): Promise<MetricsServer> {
  const handle = metricsHandler(metrics, options.token);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') return void handle(req, res);
    if (req.method === 'GET' && path === '/health') {
      res.setHeader('content-type', 'application/json');
      return void res.end('{"status":"ok"}');
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    server,
    url: `http://${host}:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

// Revio's REST API under /api/v1/ and the payout execution URL under /po/:
// Bearer auth (401 without the key), trailing slashes required, JSON bodies,
// and every operation passing through the fault knobs.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError, faultError, unauthorized } from './api-errors.ts';
import type { SandboxCore } from './core.ts';
import type { Operation } from './faults.ts';
import * as payouts from './payouts.ts';
import * as purchases from './purchases.ts';
import * as refunds from './refunds.ts';
import * as webhooks from './webhooks.ts';

type Result = { status: number; body?: unknown };
type Handler = (req: Request) => Result;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const digest = (value: string) => createHash('sha256').update(value).digest();

export function send(res: Response, error: ApiError): void;
export function send(res: Response, result: Result): void;
export function send(res: Response, result: Result | ApiError): void {
  if (result instanceof ApiError) res.set(result.headers);
  if (result.body === undefined) res.status(result.status).end();
  else res.status(result.status).json(result.body);
}

/** Constant-time check of `Authorization: Bearer <key>`. */
export function bearer(apiKey: string) {
  const expected = digest(apiKey);
  return (req: Request, res: Response, next: NextFunction) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (match && timingSafeEqual(digest(match[1]), expected)) return next();
    send(res, unauthorized());
  };
}

/** JSON body parsing whose failures answer in Revio's error layout. */
function jsonBodies() {
  const parse = express.json({ limit: '1mb', type: () => true });
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') return next();
    parse(req, res, (error?: unknown) => {
      if (!error) return next();
      const tooLarge = (error as { type?: string }).type === 'entity.too.large';
      send(res, new ApiError(tooLarge ? 413 : 400, { code: 'invalid_request', message: tooLarge ? 'Request body is too large.' : 'Request body is not valid JSON.' }));
    });
  };
}

/** Runs `handler` under the fault knobs of `operation`. */
function withFaults(core: SandboxCore, operation: Operation, handler: Handler) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const { latencyMs, afterEffect, decision } = core.faults.decide(operation);
    if (latencyMs > 0) await sleep(latencyMs);
    let result: Result | ApiError | undefined;
    if (decision.kind === 'none' || afterEffect) {
      try {
        result = handler(req);
      } catch (error) {
        if (!(error instanceof ApiError)) return next(error);
        result = error;
      }
    }
    if (decision.kind === 'hang') {
      // No answer: the caller's timeout fires. With hangMs the connection is dropped then.
      if (decision.hangMs !== undefined) setTimeout(() => req.socket.destroy(), decision.hangMs).unref();
      return;
    }
    if (decision.kind === 'error') return send(res, faultError(decision.status, decision.retryAfterSeconds));
    send(res, result!);
  };
}

const query = (req: Request) => new URL(req.originalUrl, 'http://sandbox').searchParams;
const param = (req: Request, name: string) => String(req.params[name]);

export function apiRouter(core: SandboxCore): Router {
  const router = express.Router();
  router.use(bearer(core.settings.apiKey));
  // Revio's paths all end with "/"; the sandbox refuses the others so client bugs show.
  router.use((req, res, next) => (req.path.endsWith('/') ? next() : send(res, new ApiError(404, { code: 'not_found', message: 'Not found (Revio paths end with "/").' }))));
  router.use(jsonBodies());
  const on = (method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, operation: Operation, handler: Handler) =>
    router[method](path, withFaults(core, operation, handler));

  on('post', '/purchases/', 'createPurchase', (req) => ({ status: 201, body: purchases.createPurchase(core, req.body) }));
  on('get', '/purchases/', 'listPurchases', (req) => ({ status: 200, body: purchases.listPurchases(core, query(req)) }));
  on('get', '/purchases/:id/', 'getPurchase', (req) => ({ status: 200, body: purchases.getPurchase(core, param(req, 'id')) }));
  on('post', '/purchases/:id/cancel/', 'cancelPurchase', (req) => ({ status: 200, body: purchases.cancelPurchase(core, param(req, 'id')) }));
  on('post', '/purchases/:id/refund/', 'refundPurchase', (req) => ({ status: 200, body: refunds.refundPurchase(core, param(req, 'id'), req.body) }));

  on('post', '/payouts/', 'createPayout', (req) => ({ status: 201, body: payouts.createPayout(core, req.body) }));
  on('get', '/payouts/', 'listPayouts', (req) => ({ status: 200, body: payouts.listPayouts(core, query(req)) }));
  on('get', '/payouts/:id/', 'getPayout', (req) => ({ status: 200, body: payouts.getPayout(core, param(req, 'id')) }));

  on('get', '/public_key/', 'getPublicKey', () => ({ status: 200, body: core.keys.publicKeyPem }));

  on('post', '/webhooks/', 'createWebhook', (req) => ({ status: 201, body: webhooks.createWebhook(core, req.body) }));
  on('get', '/webhooks/', 'listWebhooks', (req) => ({ status: 200, body: webhooks.listWebhooks(core, query(req)) }));
  on('get', '/webhooks/:id/', 'getWebhook', (req) => ({ status: 200, body: webhooks.getWebhook(core, param(req, 'id')) }));
  on('put', '/webhooks/:id/', 'updateWebhook', (req) => ({ status: 200, body: webhooks.updateWebhook(core, param(req, 'id'), req.body, false) }));
  on('patch', '/webhooks/:id/', 'updateWebhook', (req) => ({ status: 200, body: webhooks.updateWebhook(core, param(req, 'id'), req.body, true) }));
  on('delete', '/webhooks/:id/', 'deleteWebhook', (req) => {
    webhooks.deleteWebhook(core, param(req, 'id'));
    return { status: 204 };
  });
  router.use((_req, res) => send(res, new ApiError(404, { code: 'not_found', message: 'Not found.' })));
  return router;
}

/** POST /po/<payout id>/<provider>/ — step 2 of a payout. */
export function executionRouter(core: SandboxCore): Router {
  const router = express.Router();
  router.use(bearer(core.settings.apiKey));
  router.use(jsonBodies());
  router.post('/:id/:provider/', withFaults(core, 'executePayout', (req) => ({
    status: 200,
    body: payouts.executePayout(core, param(req, 'id'), param(req, 'provider'), req.body),
  })));
  router.use((_req, res) => send(res, new ApiError(404, { code: 'not_found', message: 'Not found.' })));
  return router;
}

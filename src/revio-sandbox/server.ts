// startRevioSandbox(options): the whole sandbox on one HTTP server.
//   /api/v1/...     Revio's API (Bearer auth)        routes.ts
//   /po/<id>/<p>/   payout execution URL (Bearer)    routes.ts
//   /p/<id>/        hosted checkout page             checkout.ts
//   /_sandbox/...   console, faults, shortcuts       admin.ts
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payout, Purchase, RevioPayment, Webhook } from '../revio/types.ts';
import { adminRouter, describeDelivery } from './admin.ts';
import { ApiError } from './api-errors.ts';
import type { CardInput } from './cards.ts';
import { checkoutRouter } from './checkout.ts';
import { SandboxCore } from './core.ts';
import { DeliveryEngine, type SandboxLogger } from './deliveries.ts';
import { FaultState, type SandboxFaults, type SandboxFaultsInput } from './faults.ts';
import { generateKeys, keysFromPem } from './keys.ts';
import * as payouts from './payouts.ts';
import * as purchases from './purchases.ts';
import * as refunds from './refunds.ts';
import type { RefundMode } from './refunds.ts';
import { apiRouter, executionRouter, send } from './routes.ts';
import { Store } from './store.ts';
import * as webhooks from './webhooks.ts';

export const DEFAULT_SANDBOX_API_KEY = 'revio-sandbox-secret-key';
export const DEFAULT_SANDBOX_BRAND_ID = '2f8e9a4c-5b1d-4e7a-9c3f-0d6b8a1e7c55';
const COMPANY_ID = '7c1d3e5f-2a4b-4c6d-8e0f-1a2b3c4d5e6f';

export interface RevioSandboxOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Base of checkout_url/execution_url when reached through another address; default http://host:port. */
  publicUrl?: string;
  /** The Bearer key the API accepts; default "revio-sandbox-secret-key". */
  apiKey?: string;
  /** The one brand purchases and payouts must name; default a fixed UUID. */
  brandId?: string;
  /** Default currency when a request names none; default ZAR. */
  currency?: string;
  /** JSON file that keeps the state (objects, key, pending deliveries) across restarts. */
  stateFile?: string;
  /** RSA private key (PEM). Otherwise the state file's key, otherwise a new one. */
  privateKeyPem?: string;
  /** Size of a generated key; default 3072 (Revio's example key size). */
  keyBits?: number;
  /** Multiplies Revio's retry gaps and 36 h delivery window; default 1. Tests use e.g. 0.0001. */
  timeScale?: number;
  /** Per-attempt webhook timeout; default 15000 ms. */
  deliveryTimeoutMs?: number;
  /** Items per list page; default 50. */
  pageSize?: number;
  /** Settle executed payouts by themselves after this many ms; default: only by hand. */
  payoutAutoCompleteMs?: number;
  /** Revio's fee on paid purchases, in basis points (payment.fee_amount); default 0. */
  feeBps?: number;
  /** Failure knobs in force from the start. */
  faults?: SandboxFaultsInput;
  /** Webhooks registered at start unless one with the same callback exists. */
  webhooks?: { callback: string; title?: string; events?: string[] }[];
  logger?: SandboxLogger;
}

export interface RevioSandbox {
  /** http://host:port (checkout pages are at `${url}/p/<id>/`). */
  url: string;
  /** The client's base URL: `${url}/api/v1/`. */
  apiUrl: string;
  apiKey: string;
  brandId: string;
  /** SPKI PEM of the signing key (GET /public_key/ and every Webhook.public_key). */
  publicKeyPem: string;
  faults: {
    get(): SandboxFaults;
    set(input: SandboxFaultsInput): void;
    patch(input: SandboxFaultsInput): void;
    reset(): void;
  };
  payPurchase(id: string, card?: CardInput): Purchase;
  failPurchase(id: string, error?: { code?: string; message?: string }): Purchase;
  succeedPayout(id: string): Payout;
  failPayout(id: string, error?: { code?: string; message?: string }): Payout;
  /** Revio refunding on its own (dashboard refund); full when amount is omitted. */
  refundPurchase(id: string, amount?: number): RevioPayment;
  /** A card chargeback; full when amount is omitted. */
  chargebackPurchase(id: string, amount?: number): RevioPayment;
  /** "pending": the refund call answers pending_refund until finishRefund. */
  setRefundMode(mode: RefundMode): void;
  finishRefund(id: string, succeed: boolean): RevioPayment | Purchase;
  purchase(id: string): Purchase | undefined;
  payout(id: string): Payout | undefined;
  purchases(): Purchase[];
  payouts(): Payout[];
  /** Refund and chargeback Payments. */
  payments(): RevioPayment[];
  webhooks(): Webhook[];
  deliveries(): ReturnType<typeof describeDelivery>[];
  /** Resolves when no webhook delivery is pending or in flight. */
  whenDeliveriesIdle(): Promise<void>;
  close(): Promise<void>;
}

export async function startRevioSandbox(options: RevioSandboxOptions = {}): Promise<RevioSandbox> {
  const store = new Store(options.stateFile);
  const state = store.state;
  const keys = options.privateKeyPem
    ? keysFromPem(options.privateKeyPem)
    : state.privateKeyPem
      ? keysFromPem(state.privateKeyPem)
      : await generateKeys(options.keyBits ?? 3072);
  // The key lives with the state so a restarted sandbox keeps signing with it.
  if (options.stateFile) state.privateKeyPem = keys.privateKeyPem;
  const faults = new FaultState(options.faults);
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0)) throw new RangeError('timeScale must be greater than 0.');
  const engine = new DeliveryEngine({ store, faults, timeScale, timeoutMs: options.deliveryTimeoutMs ?? 15_000, logger: options.logger });
  const core = new SandboxCore(
    {
      apiKey: options.apiKey ?? DEFAULT_SANDBOX_API_KEY,
      brandId: options.brandId ?? DEFAULT_SANDBOX_BRAND_ID,
      companyId: COMPANY_ID,
      currency: options.currency ?? 'ZAR',
      pageSize: options.pageSize ?? 50,
      payoutAutoCompleteMs: options.payoutAutoCompleteMs,
      feeBps: options.feeBps ?? 0,
    },
    store,
    keys,
    faults,
    engine,
  );

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // What a request changed is on disk before its answer leaves (store.ts, flushIfDirty).
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const end = res.end.bind(res) as (...args: unknown[]) => Response;
      res.end = ((...args: unknown[]) => {
        store.flushIfDirty();
        return end(...args);
      }) as Response['end'];
    }
    next();
  });
  app.use('/api/v1', apiRouter(core));
  app.use('/po', executionRouter(core));
  app.use('/p', checkoutRouter(core));
  app.use('/_sandbox', adminRouter(core));
  app.get('/', (_req, res) => res.redirect(302, '/_sandbox/'));
  app.use((_req: Request, res: Response) => send(res, new ApiError(404, { code: 'not_found', message: 'Not found.' })));
  app.use((error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    // Body-parser errors (malformed JSON or form, too large) carry a 4xx status.
    if (error.status && error.status >= 400 && error.status < 500) {
      return send(res, new ApiError(error.status, { code: 'invalid_request', message: error.status === 413 ? 'Request body is too large.' : 'Request body is not valid.' }));
    }
    options.logger?.warn({ err: { message: error.message } }, 'Revio sandbox request failed');
    send(res, new ApiError(500, { code: 'internal_error', message: 'Internal server error.' }));
  });

  const server = createServer(app);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
  core.publicUrl = (options.publicUrl ?? url).replace(/\/+$/, '');
  rebaseUrls(core, state);

  for (const hook of options.webhooks ?? []) {
    if (Object.values(state.webhooks).some((w) => w.callback === hook.callback)) continue;
    webhooks.createWebhook(core, { title: hook.title ?? 'pgwallet', callback: hook.callback, ...(hook.events ? { events: hook.events } : { all_events: true }) });
  }
  for (const payout of Object.values(state.payouts)) {
    if (payout.status === 'pending') payouts.scheduleSettlement(core, payout.id);
  }
  store.changed();
  engine.start();

  let closed: Promise<void> | undefined;
  return {
    url,
    apiUrl: `${url}/api/v1/`,
    apiKey: core.settings.apiKey,
    brandId: core.settings.brandId,
    publicKeyPem: keys.publicKeyPem,
    faults: {
      get: () => faults.get(),
      set: (input) => (faults.replace(input), engine.poke()),
      patch: (input) => (faults.patch(input), engine.poke()),
      reset: () => (faults.reset(), engine.poke()),
    },
    payPurchase(id, card) {
      const result = purchases.payPurchase(core, id, card);
      if (result.kind === 'invalid') throw new RangeError(result.message);
      return result.purchase;
    },
    failPurchase: (id, error) => purchases.failPurchase(core, id, error),
    succeedPayout: (id) => payouts.succeedPayout(core, id),
    failPayout: (id, error) => payouts.failPayout(core, id, error),
    refundPurchase: (id, amount) => refunds.providerReversal(core, id, 'refund', amount === undefined ? {} : { amount }),
    chargebackPurchase: (id, amount) => refunds.providerReversal(core, id, 'chargeback', amount === undefined ? {} : { amount }),
    setRefundMode: (mode) => void (core.refundMode = mode),
    finishRefund: (id, succeed) => refunds.finishPendingRefund(core, id, succeed),
    purchase: (id) => state.purchases[id],
    payout: (id) => state.payouts[id],
    purchases: () => Object.values(state.purchases),
    payouts: () => Object.values(state.payouts),
    payments: () => Object.values(state.payments ?? {}),
    webhooks: () => Object.values(state.webhooks),
    deliveries: () => state.deliveries.map((d) => describeDelivery(d, true)),
    whenDeliveriesIdle: () => engine.whenIdle(),
    close() {
      closed ??= (async () => {
        core.clearTimers();
        await engine.stop();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        store.close();
      })();
      return closed;
    },
  };
}

/** After a restart on another address, stored checkout/execution URLs follow the new base. */
function rebaseUrls(core: SandboxCore, state: Store['state']): void {
  for (const purchase of Object.values(state.purchases)) purchase.checkout_url = `${core.publicUrl}/p/${purchase.id}/`;
  for (const payout of Object.values(state.payouts)) payout.execution_url = `${core.publicUrl}/po/${payout.id}/${payouts.PAYOUT_PROVIDER}/`;
}

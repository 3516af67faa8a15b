// The Revio client: one object with a typed method per call. It does not retry
// by itself; callers (graphile-worker tasks) retry on `error.retryable` and,
// when `error.outcomeUnknown`, look the object up by reference first.
import type { RevioContext } from './context.ts';
import { RevioHttp, type RevioLogger } from './http.ts';
import * as payouts from './payouts.ts';
import * as purchases from './purchases.ts';
import type {
  CallOptions, CreatePayoutInput, CreatePurchaseInput, CreateWebhookInput, ExecutePayoutInput, Payout, Purchase, RevioPayment, Webhook,
} from './types.ts';
import * as webhooks from './webhooks.ts';

export const REVIO_API_URL = 'https://gate.reviopay.com/api/v1/';

export interface RevioClientOptions {
  /** Default https://gate.reviopay.com/api/v1/. */
  baseUrl?: string;
  /** The secret API key (Test or Live decides the mode). */
  apiKey: string;
  brandId: string;
  /** Default ZAR. */
  currency?: string;
  /** Default per-call timeout; default 10 s. */
  timeoutMs?: number;
  logger?: RevioLogger;
}

export interface RevioClient {
  readonly baseUrl: string;
  readonly brandId: string;
  readonly currency: string;
  createPurchase(input: CreatePurchaseInput, options?: CallOptions): Promise<Purchase>;
  getPurchase(purchaseId: string, options?: CallOptions): Promise<Purchase>;
  cancelPurchase(purchaseId: string, options?: CallOptions): Promise<Purchase>;
  /** Full refund when amount is omitted. Not idempotent. */
  refundPurchase(purchaseId: string, amount?: number | bigint | string, options?: CallOptions): Promise<RevioPayment | Purchase>;
  /** Sandbox extension (no such list on real Revio). */
  findPurchasesByReference(reference: string, options?: CallOptions): Promise<Purchase[]>;
  createPayout(input: CreatePayoutInput, options?: CallOptions): Promise<Payout>;
  executePayout(payout: Pick<Payout, 'execution_url'>, input: ExecutePayoutInput, options?: CallOptions): Promise<Payout>;
  getPayout(payoutId: string, options?: CallOptions): Promise<Payout>;
  /** Sandbox extension (no such list documented for real Revio). */
  findPayoutsByReference(reference: string, options?: CallOptions): Promise<Payout[]>;
  getPublicKey(options?: CallOptions): Promise<string>;
  createWebhook(input: CreateWebhookInput, options?: CallOptions): Promise<Webhook>;
  listWebhooks(options?: CallOptions): Promise<Webhook[]>;
  deleteWebhook(webhookId: string, options?: CallOptions): Promise<void>;
}

export function createRevioClient(options: RevioClientOptions): RevioClient {
  if (!options.brandId) throw new TypeError('Revio brand id is empty.');
  const http = new RevioHttp({ baseUrl: options.baseUrl ?? REVIO_API_URL, apiKey: options.apiKey, timeoutMs: options.timeoutMs ?? 10_000, logger: options.logger });
  const ctx: RevioContext = { http, brandId: options.brandId, currency: (options.currency ?? 'ZAR').toUpperCase() };
  return {
    baseUrl: http.baseUrl.href,
    brandId: ctx.brandId,
    currency: ctx.currency,
    createPurchase: (input, o) => purchases.createPurchase(ctx, input, o),
    getPurchase: (id, o) => purchases.getPurchase(ctx, id, o),
    cancelPurchase: (id, o) => purchases.cancelPurchase(ctx, id, o),
    refundPurchase: (id, amount, o) => purchases.refundPurchase(ctx, id, amount, o),
    findPurchasesByReference: (reference, o) => purchases.findPurchasesByReference(ctx, reference, o),
    createPayout: (input, o) => payouts.createPayout(ctx, input, o),
    executePayout: (payout, input, o) => payouts.executePayout(ctx, payout, input, o),
    getPayout: (id, o) => payouts.getPayout(ctx, id, o),
    findPayoutsByReference: (reference, o) => payouts.findPayoutsByReference(ctx, reference, o),
    getPublicKey: (o) => webhooks.getPublicKey(ctx, o),
    createWebhook: (input, o) => webhooks.createWebhook(ctx, input, o),
    listWebhooks: (o) => webhooks.listWebhooks(ctx, o),
    deleteWebhook: (id, o) => webhooks.deleteWebhook(ctx, id, o),
  };
}

// Purchases (deposits): create, get, cancel, and the sandbox-only lookup by
// our reference. REVIO_API.md §2.
import { toCents, toCurrency, toReference } from './amounts.ts';
import type { RevioContext } from './context.ts';
import { collectPages } from './pagination.ts';
import type { CallOptions, CreatePurchaseInput, Purchase, RevioPayment } from './types.ts';

const id = (purchaseId: string) => encodeURIComponent(purchaseId);

/** The JSON body of POST /purchases/ for one product line of `amount` cents. */
export function purchaseBody(ctx: RevioContext, input: CreatePurchaseInput): Record<string, unknown> {
  const body: Record<string, unknown> = {
    brand_id: input.brandId ?? ctx.brandId,
    client: input.client,
    purchase: {
      currency: toCurrency(input.currency ?? ctx.currency),
      products: [{ name: input.productName ?? 'Wallet deposit', price: toCents(input.amount), quantity: 1 }],
      ...(input.metadata ? { metadata: input.metadata } : {}),
      ...(input.dueStrict !== undefined ? { due_strict: input.dueStrict } : {}),
    },
    reference: toReference(input.reference),
  };
  if (input.successRedirect) body.success_redirect = input.successRedirect;
  if (input.failureRedirect) body.failure_redirect = input.failureRedirect;
  if (input.cancelRedirect) body.cancel_redirect = input.cancelRedirect;
  if (input.successCallback) body.success_callback = input.successCallback;
  if (input.due !== undefined) body.due = input.due;
  return body;
}

/** POST /purchases/ → 201 Purchase. Not idempotent: after an outcomeUnknown error, look up by reference first. */
export async function createPurchase(ctx: RevioContext, input: CreatePurchaseInput, options?: CallOptions): Promise<Purchase> {
  return ctx.http.request<Purchase>({ operation: 'createPurchase', method: 'POST', path: 'purchases/', body: purchaseBody(ctx, input) }, options);
}

/** GET /purchases/{id}/ → Purchase (404 → final RevioError with code not_found). */
export function getPurchase(ctx: RevioContext, purchaseId: string, options?: CallOptions): Promise<Purchase> {
  return ctx.http.request<Purchase>({ operation: 'getPurchase', method: 'GET', path: `purchases/${id(purchaseId)}/` }, options);
}

/** POST /purchases/{id}/cancel/ → Purchase in `cancelled`; it can no longer be paid. */
export function cancelPurchase(ctx: RevioContext, purchaseId: string, options?: CallOptions): Promise<Purchase> {
  return ctx.http.request<Purchase>({ operation: 'cancelPurchase', method: 'POST', path: `purchases/${id(purchaseId)}/cancel/` }, options);
}

/**
 * POST /purchases/{id}/refund/ with {"amount"} (omitted = full) → 200 Payment
 * (the refund, `related_to` the purchase), or 200 Purchase in pending_refund
 * when Revio is slow; a refusal is a 400 purchase_refund_error ([P] C-REF).
 * Not idempotent: after an unknown outcome compare refundable_amount first.
 */
export function refundPurchase(ctx: RevioContext, purchaseId: string, amount?: number | bigint | string, options?: CallOptions): Promise<RevioPayment | Purchase> {
  return ctx.http.request<RevioPayment | Purchase>({
    operation: 'refundPurchase', method: 'POST', path: `purchases/${id(purchaseId)}/refund/`,
    body: amount === undefined ? {} : { amount: toCents(amount) },
  }, options);
}

/**
 * GET /purchases/?reference= — a SANDBOX EXTENSION: Revio publishes no
 * purchase list ([A]); against real Revio this fails with a final 4xx.
 */
export function findPurchasesByReference(ctx: RevioContext, reference: string, options?: CallOptions): Promise<Purchase[]> {
  return collectPages<Purchase>(ctx, 'findPurchasesByReference', 'purchases/', { reference: toReference(reference) }, options);
}

// Payouts (withdrawals), the two-step flow of REVIO_API.md §3: create (status
// `initialized`, with an execution_url), then execute (status `pending`), then
// a `payout.success` / `payout.failed` webhook. GET by id and the lookup by
// reference are assumed ([A]); the lookup is a sandbox extension.
import { toCents, toCurrency, toReference } from './amounts.ts';
import type { RevioContext } from './context.ts';
import { RevioError } from './errors.ts';
import { collectPages } from './pagination.ts';
import type { CallOptions, CreatePayoutInput, ExecutePayoutInput, Payout } from './types.ts';

/** The JSON body of POST /payouts/. */
export function payoutBody(ctx: RevioContext, input: CreatePayoutInput): Record<string, unknown> {
  return {
    brand_id: input.brandId ?? ctx.brandId,
    client: input.client,
    payment: {
      currency: toCurrency(input.currency ?? ctx.currency),
      amount: toCents(input.amount),
      description: input.description ?? 'Withdrawal',
    },
    reference: toReference(input.reference),
  };
}

/** POST /payouts/ → Payout in `initialized`. Not idempotent: after an outcomeUnknown error, look up by reference first. */
export async function createPayout(ctx: RevioContext, input: CreatePayoutInput, options?: CallOptions): Promise<Payout> {
  return ctx.http.request<Payout>({ operation: 'createPayout', method: 'POST', path: 'payouts/', body: payoutBody(ctx, input) }, options);
}

/**
 * POST <execution_url> with the bank details → Payout in `pending`. The
 * execution_url must be on the configured Revio origin (the API key is never
 * sent elsewhere).
 */
export async function executePayout(ctx: RevioContext, payout: Pick<Payout, 'execution_url'>, input: ExecutePayoutInput, options?: CallOptions): Promise<Payout> {
  if (!payout.execution_url) {
    throw new RevioError({ kind: 'refused', operation: 'executePayout', method: 'POST', path: '(none)', revioMessage: 'the payout has no execution_url' }, false);
  }
  const body = { paymentMode: 'bank', country: 'ZA', ...input };
  return ctx.http.request<Payout>({ operation: 'executePayout', method: 'POST', path: payout.execution_url, body }, options);
}

/** GET /payouts/{id}/ → Payout ([A]: path assumed). */
export function getPayout(ctx: RevioContext, payoutId: string, options?: CallOptions): Promise<Payout> {
  return ctx.http.request<Payout>({ operation: 'getPayout', method: 'GET', path: `payouts/${encodeURIComponent(payoutId)}/` }, options);
}

/**
 * GET /payouts/?reference= — a SANDBOX EXTENSION so the wallet can find the
 * payout of a withdrawal after an ambiguous failure. Real Revio documents no
 * such list ([A]); there it fails with a final 4xx.
 */
export function findPayoutsByReference(ctx: RevioContext, reference: string, options?: CallOptions): Promise<Payout[]> {
  return collectPages<Payout>(ctx, 'findPayoutsByReference', 'payouts/', { reference: toReference(reference) }, options);
}

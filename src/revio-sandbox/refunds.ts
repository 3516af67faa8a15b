// Refunds and chargebacks of paid purchases.
// - POST /api/v1/purchases/<id>/refund/ {"amount"?}: with refunds "instant"
//   (the default) answers 200 with the refund Payment (`related_to` the
//   purchase) and emits payment.refunded; with refunds "pending" answers the
//   Purchase in pending_refund (purchase.pending_refund) and waits for
//   /_sandbox/purchases/<id>/refund/complete or /refund/fail (payment.refunded,
//   or purchase.refund_failure with the purchase back in paid). Too large an
//   amount, or a purchase that is not paid, is a 400 purchase_refund_error
//   ([P] C-REF).
// - /_sandbox/purchases/<id>/refund and /chargeback: Revio acting on its own
//   (a refund from Revio's dashboard, a card chargeback): payment.refunded or
//   payment.charged_back, signed like every webhook.
// Payment fields besides id, type, related_to and amount are [A] (docs/revio.md).
import { randomUUID } from 'node:crypto';
import type { Purchase, RevioPayment } from '../revio/types.ts';
import { asObject, integerIn, refused } from './api-errors.ts';
import type { SandboxCore } from './core.ts';
import { getPurchase } from './purchases.ts';

const REFUNDABLE = new Set(['paid', 'cleared', 'settled', 'refunded', 'chargeback']);

export type RefundMode = 'instant' | 'pending';

function refundableAmount(purchase: Purchase): number {
  return Number(purchase.refundable_amount ?? 0);
}

function amountOf(core: SandboxCore, purchase: Purchase, rawBody: unknown, code: string): number {
  const body = rawBody === undefined || rawBody === null ? {} : asObject(rawBody, []);
  if (!REFUNDABLE.has(purchase.status)) throw refused(`A purchase in status ${purchase.status} cannot be refunded.`, code);
  if (core.store.state.pendingRefunds?.[purchase.id] !== undefined) throw refused('A refund of this purchase is already pending.', code);
  const left = refundableAmount(purchase);
  const amount = integerIn(body.amount, ['amount'], 1, false) ?? left;
  if (amount <= 0 || amount > left) throw refused(`The amount must be between 1 and the refundable ${left}.`, code);
  return amount;
}

function makePayment(core: SandboxCore, purchase: Purchase, amount: number, kind: 'refund' | 'chargeback'): RevioPayment {
  const now = core.now();
  const payment: RevioPayment = {
    id: randomUUID(),
    type: 'payment',
    status: kind === 'refund' ? 'refunded' : 'charged_back',
    payment_type: kind,
    is_outgoing: true,
    amount,
    currency: purchase.purchase.currency,
    net_amount: amount,
    fee_amount: 0,
    paid_on: now,
    related_to: { type: 'purchase', id: purchase.id },
    reference: purchase.reference,
    is_test: true,
    created_on: now,
    updated_on: now,
  };
  core.store.state.payments ??= {};
  core.store.state.payments[payment.id] = payment;
  purchase.refundable_amount = refundableAmount(purchase) - amount;
  core.transition(purchase, kind === 'refund' ? 'refunded' : 'chargeback');
  core.emit(kind === 'refund' ? 'payment.refunded' : 'payment.charged_back', payment);
  return payment;
}

/** The API call: a refund Payment (instant) or the Purchase in pending_refund. */
export function refundPurchase(core: SandboxCore, id: string, rawBody: unknown): RevioPayment | Purchase {
  const purchase = getPurchase(core, id);
  const amount = amountOf(core, purchase, rawBody, 'purchase_refund_error');
  if (core.refundMode === 'pending') {
    core.store.state.pendingRefunds ??= {};
    core.store.state.pendingRefunds[purchase.id] = amount;
    core.transition(purchase, 'pending_refund');
    core.emit('purchase.pending_refund', purchase);
    return purchase;
  }
  return makePayment(core, purchase, amount, 'refund');
}

/** Settles a pending refund: payment.refunded, or purchase.refund_failure (back to paid). */
export function finishPendingRefund(core: SandboxCore, id: string, succeed: boolean): RevioPayment | Purchase {
  const purchase = getPurchase(core, id);
  const amount = core.store.state.pendingRefunds?.[id];
  if (amount === undefined) throw refused('No refund of this purchase is pending.', 'purchase_refund_error');
  delete core.store.state.pendingRefunds![id];
  if (succeed) return makePayment(core, purchase, amount, 'refund');
  purchase.transaction_data.attempts.push({ type: 'refund', successful: false, error: { code: 'refund_declined', message: 'The card issuer declined the refund.' } });
  core.transition(purchase, 'paid');
  core.emit('purchase.refund_failure', purchase);
  return purchase;
}

/** Revio acting on its own: a refund from its dashboard or a card chargeback. */
export function providerReversal(core: SandboxCore, id: string, kind: 'refund' | 'chargeback', rawBody: unknown): RevioPayment {
  const purchase = getPurchase(core, id);
  const amount = amountOf(core, purchase, rawBody, kind === 'refund' ? 'purchase_refund_error' : 'chargeback_error');
  return makePayment(core, purchase, amount, kind);
}

// Objects the worker and reconciliation read from Revio's API carry no
// event_type; they get the one Revio's webhook for the same status carries,
// so the same snapshot arriving both ways is one event (deduplicated on id,
// event type, status and updated_on by app_private.receive_revio_event).
import type { Payout, Purchase, RevioPayment } from '../revio/index.ts';

const PURCHASE_EVENTS: Record<string, string> = {
  created: 'purchase.created',
  viewed: 'purchase.viewed',
  paid: 'purchase.paid',
  error: 'purchase.payment_failure',
  cancelled: 'purchase.cancelled',
  pending_execute: 'purchase.pending_execute',
  pending_charge: 'purchase.pending_charge',
  hold: 'purchase.hold',
  preauthorized: 'purchase.preauthorized',
  pending_refund: 'purchase.pending_refund',
  settled: 'purchase.settled',
  // [A] No purchase.refunded event exists (refunds arrive as payment.refunded);
  // a purchase read back in these statuses keeps its own name.
  refunded: 'purchase.refunded',
  chargeback: 'purchase.chargeback',
};

const PAYOUT_EVENTS: Record<string, string> = {
  initialized: 'payout.created',
  pending: 'payout.pending',
  success: 'payout.success',
  error: 'payout.failed',
};

const PAYMENT_EVENTS: Record<string, string> = {
  refund: 'payment.refunded',
  chargeback: 'payment.charged_back',
};

export function eventTypeFor(object: Pick<Purchase | Payout, 'type' | 'status'> | RevioPayment): string {
  if (object.type === 'payment') {
    const payment = object as RevioPayment;
    // [A] A refund call answers with a Payment; it is the refund's payment.refunded.
    return PAYMENT_EVENTS[payment.payment_type ?? 'refund'] ?? `payment.${payment.payment_type}`;
  }
  const table = object.type === 'payout' ? PAYOUT_EVENTS : PURCHASE_EVENTS;
  return table[object.status as string] ?? `${object.type}.${object.status}`;
}

/** The JSON body receive_revio_event takes for an object read from the API. */
export function asEventBody(object: Purchase | Payout | RevioPayment): string {
  return JSON.stringify({ ...object, event_type: eventTypeFor(object) });
}

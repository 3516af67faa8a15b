// revio.refund_purchase: asks Revio to refund (part of) the purchase behind a
// deposit (POST /purchases/{id}/refund/) and applies the answer through
// app_private.receive_revio_event: a refund Payment confirms the refund (the
// held amount leaves the wallet), a Purchase in pending_refund leaves it
// submitted until payment.refunded arrives, a refusal fails it (the hold is
// released).
//
// Never two refunds for one request: a refund call is not idempotent and
// Revio has no lookup by our reference, so before the call we store the
// purchase's refundable_amount (mark_refund_requested). A later attempt (after
// a timeout, a 5xx, a crash) reads the purchase again first: if its
// refundable amount has dropped by ours, the earlier call went through and
// the purchase itself confirms the refund; only if it has not, and the
// earlier call can no longer land (assertNoCallInFlight), do we call again.
// One refund per deposit is open at a time, so nothing else moves it.
import type { Task } from 'graphile-worker';
import { asEventBody } from '../../payments/revio-events.ts';
import type { RevioClient } from '../../revio/index.ts';
import { applyRevioObject, assertNoCallInFlight, exclusively, mayLandLater, NeedsAttention, refusalReason, runRevioJob, type RevioJobSettings } from './revio-job.ts';

interface RefundRow {
  id: string;
  status: string;
  amount: string;
  currency: string;
  revio_purchase_id: string | null;
  refund_requested_at: Date | null;
  refundable_before: string | null;
}

export function revioRefundPurchase(revio: RevioClient, settings: RevioJobSettings): Task {
  // One attempt at a time per refund, even when a paused worker's job was
  // freed and re-run elsewhere (revio-job.ts, exclusively): in the 30-minute
  // fault run a worker paused between its read-back and its refund call woke
  // after another worker had refunded, and refunded again.
  return (payload, helpers) => exclusively(helpers, `revio:refund:${(payload as { refund_id: string }).refund_id}`, async () => {
    const refundId = (payload as { refund_id: string }).refund_id;
    const load = async () => (await helpers.query<RefundRow>('select * from app_private.refund_for_revio($1)', [refundId])).rows[0];
    let refund = await load();
    if (!refund || refund.status !== 'requested') return; // answered already, or gone
    let calledAt = refund.refund_requested_at;

    await runRevioJob(helpers, settings, {
      kind: 'refund',
      id: refundId,
      async onRefused(error) {
        await helpers.query('select app_private.fail_refund($1, $2)', [refundId, refusalReason(error, 'refund')]);
      },
    }, async () => {
      if (!refund.revio_purchase_id) throw new NeedsAttention('The deposit has no Revio purchase to refund.');
      const purchase = await revio.getPurchase(refund.revio_purchase_id);
      const refundable = BigInt(Math.trunc(Number(purchase.refundable_amount ?? 0)));
      if (refund.refund_requested_at && refund.refundable_before !== null
        && refundable <= BigInt(refund.refundable_before) - BigInt(refund.amount)) {
        // The earlier call got through: the purchase read back confirms it.
        const outcome = await applyRevioObject(helpers, asEventBody(purchase));
        helpers.logger.info(`refund ${refundId}: found done at Revio (${purchase.status}) ${outcome}`);
        return;
      }
      assertNoCallInFlight(settings, 'refund', calledAt);
      await helpers.query('select app_private.mark_refund_requested($1, $2)', [refundId, refundable.toString()]);
      refund = (await load())!;
      // A final refusal (400 purchase_refund_error) reaches onRefused, which fails the refund.
      const answer = await revio.refundPurchase(refund.revio_purchase_id!, refund.amount).catch((error: unknown) => {
        if (mayLandLater(error)) calledAt = new Date();
        throw error;
      });
      const outcome = await applyRevioObject(helpers, asEventBody(answer));
      if (answer.type === 'purchase') await helpers.query('select app_private.mark_refund_submitted($1, $2)', [refundId, answer.status]);
      helpers.logger.info(`refund ${refundId}: Revio answered ${answer.type} (${String(answer.status ?? '')}) ${outcome}`);
    });
  });
}

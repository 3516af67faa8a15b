// revio.cancel_purchase: closes Revio's checkout for a deposit the person
// cancelled (POST /purchases/{id}/cancel/), so it can no longer be paid, and
// applies the answer through app_private.receive_revio_event. If Revio
// refuses because the purchase was paid first, the purchase is read back and
// applied: the payment is credited and flagged, never lost.
//
// A purchase whose create call was in flight when the deposit was cancelled
// is found by our reference where Revio can be asked (the sandbox); where it
// cannot, its first sighting (the create call's answer or purchase.created)
// queues this job again (apply_purchase_event).
import type { Task } from 'graphile-worker';
import { asEventBody } from '../../payments/revio-events.ts';
import { RevioError, type Purchase, type RevioClient } from '../../revio/index.ts';
import { applyRevioObject, runRevioJob, type RevioJobSettings } from './revio-job.ts';

interface DepositRow {
  id: string;
  status: string;
  revio_purchase_id: string | null;
  purchase_requested_at: Date | null;
}

export function revioCancelPurchase(revio: RevioClient, settings: RevioJobSettings): Task {
  return async (payload, helpers) => {
    const depositId = (payload as { deposit_id: string }).deposit_id;
    const { rows } = await helpers.query<DepositRow>('select * from app_private.deposit_for_purchase($1)', [depositId]);
    const deposit = rows[0];
    if (!deposit || deposit.status !== 'cancelled') return; // credited meanwhile (a late payment), or gone

    await runRevioJob(helpers, settings, {
      kind: 'deposit',
      id: depositId,
      async onRefused() {
        // Not cancellable any more (paid, expired …): what Revio has decides.
        for (const id of await purchaseIds(revio, deposit)) await applyRevioObject(helpers, asEventBody(await revio.getPurchase(id)));
      },
    }, async () => {
      for (const id of await purchaseIds(revio, deposit)) {
        let purchase: Purchase;
        try {
          purchase = await revio.cancelPurchase(id);
        } catch (error) {
          if (!(error instanceof RevioError && !error.retryable)) throw error;
          purchase = await revio.getPurchase(id); // paid or closed before the cancel
        }
        const outcome = await applyRevioObject(helpers, asEventBody(purchase));
        helpers.logger.info(`deposit ${depositId}: purchase ${id} ${purchase.status} ${outcome}`);
      }
    });
  };
}

async function purchaseIds(revio: RevioClient, deposit: DepositRow): Promise<string[]> {
  if (deposit.revio_purchase_id) return [deposit.revio_purchase_id];
  if (!deposit.purchase_requested_at) return [];
  try {
    return (await revio.findPurchasesByReference(deposit.id)).map((p) => p.id);
  } catch (error) {
    if (error instanceof RevioError && !error.retryable) return []; // no lookup on this Revio; its first sighting queues us again
    throw error;
  }
}

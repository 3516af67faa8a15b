// revio.create_purchase: creates the Revio purchase for a new deposit
// (reference = the deposit id) and applies Revio's answer through
// app_private.receive_revio_event, which stores the purchase id and checkout
// URL and moves the deposit to awaiting_payment.
//
// A create is not idempotent at Revio. Before each create we record that we
// are about to make one; if that mark is already there (an earlier attempt
// timed out, got a 5xx, or the process died), we look our reference up
// first and adopt what we find. Where the lookup is not available (real
// Revio has no purchase list) we create again: an unpaid extra purchase
// does no harm, and a payment on it is flagged for review, never credited
// twice (see apply_purchase_event).
import type { Task } from 'graphile-worker';
import { asEventBody } from '../../payments/revio-events.ts';
import { RevioError, type Purchase, type RevioClient } from '../../revio/index.ts';
import { applyRevioObject, assertNoCallInFlight, exclusively, mayLandLater, refusalReason, runRevioJob, type RevioJobSettings } from './revio-job.ts';

interface DepositRow {
  id: string;
  status: string;
  amount: string;
  currency: string;
  email: string;
  full_name: string;
  revio_purchase_id: string | null;
  purchase_requested_at: Date | null;
}

export function revioCreatePurchase(revio: RevioClient, settings: RevioJobSettings): Task {
  return (payload, helpers) => exclusively(helpers, `revio:deposit:${(payload as { deposit_id: string }).deposit_id}`, async () => {
    const depositId = (payload as { deposit_id: string }).deposit_id;
    const load = async () => (await helpers.query<DepositRow>('select * from app_private.deposit_for_purchase($1)', [depositId])).rows[0];
    const deposit = await load();
    if (!deposit || deposit.status !== 'pending' || deposit.revio_purchase_id) return; // done already, or gone
    let requested = deposit.purchase_requested_at !== null;
    let calledAt = deposit.purchase_requested_at;

    await runRevioJob(helpers, settings, {
      kind: 'deposit',
      id: depositId,
      async onRefused(error) {
        await helpers.query('select app_private.fail_deposit($1, $2)', [depositId, refusalReason(error, 'payment')]);
      },
    }, async () => {
      let purchase: Purchase | undefined;
      if (requested) purchase = await findExisting(revio, depositId);
      if (!purchase) {
        assertNoCallInFlight(settings, 'purchase', calledAt);
        await helpers.query('select app_private.mark_revio_requested($1, $2)', ['deposit', depositId]);
        requested = true;
        purchase = await revio.createPurchase({
          amount: deposit.amount,
          currency: deposit.currency,
          reference: depositId,
          client: { email: deposit.email, full_name: deposit.full_name },
          productName: 'pgwallet deposit',
          metadata: { deposit_id: depositId },
        }).catch((error: unknown) => {
          if (mayLandLater(error)) calledAt = new Date();
          throw error;
        });
      }
      const outcome = await applyRevioObject(helpers, asEventBody(purchase));
      helpers.logger.info(`deposit ${depositId}: purchase ${purchase.id} (${purchase.status}) ${outcome}`);
    });
  });
}

/** The purchase an earlier attempt made, if Revio can tell us. */
async function findExisting(revio: RevioClient, depositId: string): Promise<Purchase | undefined> {
  try {
    const found = await revio.findPurchasesByReference(depositId);
    // Several can exist only if lookups failed before; the oldest is the one we keep.
    return found.sort((a, b) => a.created_on - b.created_on)[0];
  } catch (error) {
    if (error instanceof RevioError && !error.retryable) return undefined; // no lookup on this Revio
    throw error;
  }
}

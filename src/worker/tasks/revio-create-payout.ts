// revio.create_payout: creates the Revio payout for a withdrawal (reference =
// the withdrawal id), executes it with the bank details (the account number
// decrypted here, in the worker, and nowhere else), and applies each answer
// through app_private.receive_revio_event (requested → submitted; a payout
// that already succeeded or failed is settled at once).
//
// Never two payouts for one withdrawal: before the create call we record that
// one is being made; every later attempt (after a timeout, a 5xx, a crash)
// first looks our reference up (findPayoutsByReference) and adopts what it
// finds; finding nothing counts only once the earlier call can no longer
// land (assertNoCallInFlight). If Revio cannot be asked (no lookup on this
// Revio), we do not create again: the withdrawal is flagged for a person, its
// money still held.
import type { Task } from 'graphile-worker';
import { BankKeyError, decryptAccountNumber, type BankAccountKey } from '../../payments/bank-crypto.ts';
import { asEventBody } from '../../payments/revio-events.ts';
import { RevioError, type Payout, type RevioClient } from '../../revio/index.ts';
import { applyRevioObject, assertNoCallInFlight, exclusively, mayLandLater, NeedsAttention, refusalReason, runRevioJob, type RevioJobSettings } from './revio-job.ts';

interface WithdrawalRow {
  id: string;
  user_id: string;
  status: string;
  amount: string;
  currency: string;
  email: string;
  full_name: string;
  revio_payout_id: string | null;
  payout_requested_at: Date | null;
  account_holder: string;
  bank_name: string;
  branch_code: string;
  account_type: string;
  account_number_ciphertext: Buffer;
}

export function revioCreatePayout(revio: RevioClient, bankAccountKey: BankAccountKey | undefined, settings: RevioJobSettings): Task {
  return (payload, helpers) => exclusively(helpers, `revio:withdrawal:${(payload as { withdrawal_id: string }).withdrawal_id}`, async () => {
    const withdrawalId = (payload as { withdrawal_id: string }).withdrawal_id;
    const { rows } = await helpers.query<WithdrawalRow>('select * from app_private.withdrawal_for_payout($1)', [withdrawalId]);
    const w = rows[0];
    if (!w || (w.status !== 'requested' && w.status !== 'submitted')) return; // settled already, or gone
    let payoutId = w.revio_payout_id;
    let requested = w.payout_requested_at !== null;
    let calledAt = w.payout_requested_at;

    await runRevioJob(helpers, settings, {
      kind: 'withdrawal',
      id: withdrawalId,
      async onRefused(error) {
        await helpers.query('select app_private.fail_withdrawal($1, $2)', [withdrawalId, refusalReason(error, 'payout')]);
      },
    }, async () => {
      if (!bankAccountKey) throw new NeedsAttention('BANK_ACCOUNT_ENCRYPTION_KEY is not configured for the worker, so the account number cannot be read.');
      let payout: Payout | undefined;
      if (payoutId) {
        payout = await revio.getPayout(payoutId);
      } else {
        if (requested) payout = await findExisting(revio, withdrawalId);
        if (!payout) {
          assertNoCallInFlight(settings, 'payout', calledAt);
          await helpers.query('select app_private.mark_revio_requested($1, $2)', ['withdrawal', withdrawalId]);
          requested = true;
          payout = await revio.createPayout({
            amount: w.amount,
            currency: w.currency,
            reference: withdrawalId,
            description: 'pgwallet withdrawal',
            client: { email: w.email, full_name: w.account_holder, country: 'ZA' },
          }).catch((error: unknown) => {
            if (mayLandLater(error)) calledAt = new Date();
            throw error;
          });
        }
        payoutId = payout.id;
        await applyRevioObject(helpers, asEventBody(payout));
      }

      if (payout.status === 'initialized') {
        let accountNumber: string;
        try {
          accountNumber = decryptAccountNumber(bankAccountKey, w.user_id, w.account_number_ciphertext);
        } catch (error) {
          // A wrong or rotated key does not get better by retrying.
          if (error instanceof BankKeyError) throw new NeedsAttention(`${error.message} The payout ${payout.id} is created but not executed; the money stays held.`);
          throw error;
        }
        try {
          payout = await revio.executePayout(payout, {
            accountNumber,
            accountInstitution: w.bank_name,
            branchCode: w.branch_code,
            accountType: w.account_type,
            accountHolder: w.account_holder,
            paymentMode: 'bank',
            country: 'ZA',
          });
        } catch (error) {
          // Executed already (an earlier answer was lost): read where it stands.
          if (!(error instanceof RevioError && error.code === 'payout_not_executable')) throw error;
          payout = await revio.getPayout(payout.id);
        }
      }
      const outcome = await applyRevioObject(helpers, asEventBody(payout));
      helpers.logger.info(`withdrawal ${withdrawalId}: payout ${payout.id} (${payout.status}) ${outcome}`);
    });
  });
}

/** The payout an earlier attempt made. More than one, or no way to ask, needs a person. */
async function findExisting(revio: RevioClient, withdrawalId: string): Promise<Payout | undefined> {
  let found: Payout[];
  try {
    found = await revio.findPayoutsByReference(withdrawalId);
  } catch (error) {
    if (error instanceof RevioError && !error.retryable) {
      throw new NeedsAttention(`An earlier payout request may have reached Revio and it cannot be looked up by reference (${error.message}); `
        + `check Revio for a payout with reference ${withdrawalId} before anything else. The money stays held.`);
    }
    throw error;
  }
  if (found.length > 1) {
    throw new NeedsAttention(`Revio has ${found.length} payouts with reference ${withdrawalId}: ${found.map((p) => `${p.id} (${p.status})`).join(', ')}.`);
  }
  return found[0];
}

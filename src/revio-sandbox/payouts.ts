// Payouts, the two-step flow: POST /payouts/ (initialized, with an
// execution_url), POST execution_url with bank details (pending), then success
// or error by hand (/_sandbox/payouts/<id>/succeed|fail), or by itself after
// `payoutAutoCompleteMs` when configured. Account number 910000001 (Revio's
// mock-bank "reject" account for debit orders, reused here) always fails.
import { randomUUID } from 'node:crypto';
import type { Payout } from '../revio/types.ts';
import { asObject, conflict, currencyOf, emailOf, fieldError, integerIn, notFound, optionalString, refused, requiredString, requireBrand } from './api-errors.ts';
import type { SandboxCore } from './core.ts';

export const REJECTED_ACCOUNT = '910000001';
export const PAYOUT_PROVIDER = 'bank';

export function createPayout(core: SandboxCore, rawBody: unknown): Payout {
  const body = asObject(rawBody, []);
  requireBrand(body, core.settings.brandId);
  const client = asObject(body.client, ['client']);
  emailOf(client.email, ['client', 'email']);
  const payment = asObject(body.payment, ['payment']);
  // Paytota's example sends the amount as a string; both are accepted, an integer is returned.
  const amount = integerIn(payment.amount, ['payment', 'amount'], 1, true)!;
  const currency = currencyOf(payment.currency, ['payment', 'currency'], core.settings.currency);
  const description = optionalString(payment, 'description', ['payment'], 256) ?? '';
  const reference = optionalString(body, 'reference', [], 128);
  const state = core.store.state;
  state.counters.payout += 1;
  const id = randomUUID();
  const now = core.now();
  const payout: Payout = {
    id,
    type: 'payout',
    status: 'initialized',
    status_history: [{ status: 'initialized', timestamp: now }],
    execution_url: `${core.publicUrl}/po/${id}/${PAYOUT_PROVIDER}/`,
    payment: { is_outgoing: true, payment_type: 'payout', amount, currency, net_amount: amount, fee_amount: 0, pending_amount: 0, paid_on: null, description },
    client: client as Payout['client'],
    transaction_data: { attempts: [] },
    reference: reference ?? '',
    reference_generated: `#P${100000 + state.counters.payout}`,
    brand_id: core.settings.brandId,
    company_id: core.settings.companyId,
    is_test: true,
    created_on: now,
    updated_on: now,
  };
  state.payouts[id] = payout;
  core.emit('payout.created', payout);
  return payout;
}

export function getPayout(core: SandboxCore, id: string): Payout {
  const payout = core.store.state.payouts[id];
  if (!payout) throw notFound();
  return payout;
}

export function listPayouts(core: SandboxCore, query: URLSearchParams) {
  const reference = query.get('reference');
  return core.page(Object.values(core.store.state.payouts).filter((p) => reference === null || p.reference === reference), 'payouts/', query);
}

/** POST execution_url. The SA bank body is an assumption: accountNumber and accountInstitution are required. */
export function executePayout(core: SandboxCore, id: string, provider: string, rawBody: unknown): Payout {
  const payout = getPayout(core, id);
  if (provider !== PAYOUT_PROVIDER) throw notFound();
  const body = asObject(rawBody, []);
  const accountNumber = requiredString(body, 'accountNumber', [], 32).replace(/\s/g, '');
  if (!/^\d{6,20}$/.test(accountNumber)) throw fieldError(['accountNumber'], 'Enter a bank account number of 6 to 20 digits.');
  const accountInstitution = requiredString(body, 'accountInstitution', [], 100);
  if (payout.status !== 'initialized') throw refused(`A payout in status ${payout.status} cannot be executed again.`, 'payout_not_executable');
  const rejected = accountNumber === REJECTED_ACCOUNT;
  core.store.state.payoutExecutions[id] = { provider, accountLast4: accountNumber.slice(-4), accountInstitution, executedAt: Date.now(), rejected };
  core.transition(payout, 'pending');
  core.emit('payout.pending', payout);
  scheduleSettlement(core, id);
  return payout;
}

/**
 * Settles a pending payout by itself: the reject account fails at once, any
 * other succeeds after `payoutAutoCompleteMs` when configured. Also called for
 * every pending payout when the sandbox starts again: a sandbox killed between
 * executing a payout to the reject account and failing it must not let it
 * succeed after the restart (the fault run saw exactly that).
 */
export function scheduleSettlement(core: SandboxCore, id: string): void {
  if (core.store.state.payoutExecutions[id]?.rejected) return core.later(0, () => settleIfPending(core, id, false));
  const ms = core.settings.payoutAutoCompleteMs;
  if (ms !== undefined) core.later(ms, () => settleIfPending(core, id, true));
}

function settleIfPending(core: SandboxCore, id: string, success: boolean): void {
  const payout = core.store.state.payouts[id];
  if (payout?.status !== 'pending') return;
  if (success) succeedPayout(core, id);
  else failPayout(core, id, { code: 'account_rejected', message: 'The bank rejected the payment: account closed or invalid.' });
}

export function succeedPayout(core: SandboxCore, id: string): Payout {
  const payout = getPayout(core, id);
  if (payout.status !== 'pending') throw conflict(`Only a pending (executed) payout can succeed; this one is ${payout.status}.`);
  payout.payment.paid_on = core.now();
  core.transition(payout, 'success');
  core.emit('payout.success', payout);
  return payout;
}

export function failPayout(core: SandboxCore, id: string, input: { code?: string; message?: string } = {}): Payout {
  const payout = getPayout(core, id);
  if (payout.status !== 'pending' && payout.status !== 'initialized') throw conflict(`A payout in status ${payout.status} cannot fail any more.`);
  const error = { code: input.code ?? 'payout_failed', message: input.message ?? 'The bank did not accept the payout.' };
  payout.transaction_data ??= { attempts: [] };
  payout.transaction_data.attempts.push({ type: 'execute', successful: false, processing_time: core.now(), error });
  core.transition(payout, 'error');
  core.emit('payout.failed', payout);
  return payout;
}

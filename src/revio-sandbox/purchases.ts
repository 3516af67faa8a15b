// Purchases: creation with Revio's request fields, get, list by reference
// (sandbox extension), cancel, view, pay and fail, each change emitting the
// matching webhook event.
import { randomUUID } from 'node:crypto';
import type { Product, Purchase } from '../revio/types.ts';
import {
  asObject, conflict, currencyOf, emailOf, fieldError, integerIn, notFound, optionalString, optionalUrl, refused, requireBrand, type Json,
} from './api-errors.ts';
import { checkCard, successCard, type CardInput } from './cards.ts';
import type { SandboxCore } from './core.ts';

/** Statuses in which the checkout still takes a payment. */
export const PAYABLE = new Set(['created', 'sent', 'viewed', 'error', 'overdue']);
const CANCELLABLE = new Set(['created', 'sent', 'viewed', 'error', 'overdue', 'pending_execute', 'pending_charge']);

function parseProducts(value: unknown): { products: Product[]; total: number } {
  if (!Array.isArray(value) || value.length === 0) throw fieldError(['purchase', 'products'], 'Ensure this field has at least 1 elements.', 'min_length');
  let total = 0;
  const products = value.map((raw, index): Product => {
    const path = ['purchase', 'products', String(index)];
    const product = asObject(raw, path);
    const name = optionalString(product, 'name', path, 256);
    if (!name) throw fieldError([...path, 'name'], 'This field is required.', 'required');
    const price = integerIn(product.price, [...path, 'price'], 0, true)!;
    const quantity = product.quantity === undefined ? 1 : Number(product.quantity);
    if (!(quantity > 0) || !Number.isFinite(quantity)) throw fieldError([...path, 'quantity'], 'A valid number is required.');
    const discount = integerIn(product.discount, [...path, 'discount'], 0, false) ?? 0;
    const taxPercent = product.tax_percent === undefined ? 0 : Number(product.tax_percent);
    if (!(taxPercent >= 0 && taxPercent <= 100)) throw fieldError([...path, 'tax_percent'], 'Must be between 0 and 100.');
    // Assumed formula ([A]): line = round(price × quantity) − discount, plus tax on the line.
    const line = Math.round(price * quantity) - discount;
    total += line + Math.round((line * taxPercent) / 100);
    return { name, price, quantity: quantity.toFixed(4), discount, tax_percent: taxPercent.toFixed(2), category: typeof product.category === 'string' ? product.category : '' };
  });
  return { products, total };
}

export function createPurchase(core: SandboxCore, rawBody: unknown): Purchase {
  const body = asObject(rawBody, []);
  requireBrand(body, core.settings.brandId);
  if (body.client_id !== undefined && body.client_id !== null) {
    throw fieldError(['client_id'], 'Saved clients are not supported by the sandbox; send "client".', 'unsupported');
  }
  if (body.client === undefined) throw fieldError(['client'], 'Either client or client_id is required.', 'required');
  const client = asObject(body.client, ['client']);
  emailOf(client.email, ['client', 'email']);
  const details = asObject(body.purchase, ['purchase']);
  const { products, total: computed } = parseProducts(details.products);
  const currency = currencyOf(details.currency, ['purchase', 'currency'], core.settings.currency);
  const totalOverride = integerIn(details.total_override, ['purchase', 'total_override'], 0, false);
  const total = totalOverride ?? computed;
  if (total <= 0) throw refused('The purchase total must be greater than zero.', 'purchase_total_invalid');
  const reference = optionalString(body, 'reference', [], 128);
  const due = integerIn(body.due, ['due'], 0, false);
  const metadata = details.metadata === undefined || details.metadata === null ? null : asObject(details.metadata, ['purchase', 'metadata']);
  const urls = {
    success_redirect: optionalUrl(body, 'success_redirect'),
    failure_redirect: optionalUrl(body, 'failure_redirect'),
    cancel_redirect: optionalUrl(body, 'cancel_redirect'),
    success_callback: optionalUrl(body, 'success_callback'),
  };
  const state = core.store.state;
  state.counters.purchase += 1;
  const id = randomUUID();
  const now = core.now();
  const purchase: Purchase = {
    id,
    type: 'purchase',
    status: 'created',
    status_history: [{ status: 'created', timestamp: now }],
    checkout_url: `${core.publicUrl}/p/${id}/`,
    purchase: {
      currency,
      products,
      total,
      total_override: totalOverride ?? null,
      language: typeof details.language === 'string' ? details.language : 'en',
      notes: typeof details.notes === 'string' ? details.notes : '',
      due_strict: details.due_strict === true || body.due_strict === true,
      metadata,
    },
    payment: null,
    transaction_data: { payment_method: '', country: '', attempts: [] },
    client: client as Purchase['client'],
    client_id: null,
    reference: reference ?? '',
    reference_generated: `#${100000 + state.counters.purchase}`,
    brand_id: core.settings.brandId,
    company_id: core.settings.companyId,
    is_test: true,
    send_receipt: body.send_receipt === true,
    skip_capture: false,
    refundable_amount: 0,
    viewed_on: null,
    created_on: now,
    updated_on: now,
    due: due ?? null,
    ...urls,
  };
  state.purchases[id] = purchase;
  core.emit('purchase.created', purchase);
  return purchase;
}

/** Applies `due` lazily: past due, a payable purchase becomes expired (due_strict) or overdue. */
function refreshDue(core: SandboxCore, purchase: Purchase): void {
  if (purchase.due === null || core.now() <= purchase.due) return;
  if (!['created', 'sent', 'viewed', 'error'].includes(purchase.status)) return;
  core.transition(purchase, purchase.purchase.due_strict ? 'expired' : 'overdue');
  core.store.changed();
}

export function getPurchase(core: SandboxCore, id: string): Purchase {
  const purchase = core.store.state.purchases[id];
  if (!purchase) throw notFound();
  refreshDue(core, purchase);
  return purchase;
}

export function listPurchases(core: SandboxCore, query: URLSearchParams) {
  const reference = query.get('reference');
  const all = Object.values(core.store.state.purchases).filter((p) => reference === null || p.reference === reference);
  for (const purchase of all) refreshDue(core, purchase);
  return core.page(all, 'purchases/', query);
}

export function cancelPurchase(core: SandboxCore, id: string): Purchase {
  const purchase = getPurchase(core, id);
  if (purchase.status === 'cancelled') return purchase;
  if (!CANCELLABLE.has(purchase.status)) throw refused(`A purchase in status ${purchase.status} cannot be cancelled.`, 'purchase_cancel_error');
  core.transition(purchase, 'cancelled');
  core.emit('purchase.cancelled', purchase);
  return purchase;
}

/** The customer opened the checkout page. */
export function viewPurchase(core: SandboxCore, id: string): Purchase {
  const purchase = getPurchase(core, id);
  if (purchase.status === 'created' || purchase.status === 'sent') {
    core.transition(purchase, 'viewed');
    purchase.viewed_on = purchase.updated_on;
    core.emit('purchase.viewed', purchase);
  }
  return purchase;
}

export type PayResult =
  | { kind: 'paid'; purchase: Purchase }
  | { kind: 'declined'; purchase: Purchase; code: string; message: string }
  | { kind: 'invalid'; purchase: Purchase; message: string };

/** One payment attempt with a card (the checkout page and the REST shortcut). */
export function payPurchase(core: SandboxCore, id: string, card: CardInput = successCard()): PayResult {
  const purchase = getPurchase(core, id);
  if (!PAYABLE.has(purchase.status)) throw conflict(`The purchase is ${purchase.status} and cannot be paid.`);
  const outcome = checkCard(card);
  if (outcome.kind === 'invalid') return { kind: 'invalid', purchase, message: outcome.message };
  const now = core.now();
  const attempts = purchase.transaction_data.attempts;
  if (outcome.kind === 'declined') {
    recordFailure(core, purchase, outcome.code, outcome.message, { card_last4: outcome.last4 });
    return { kind: 'declined', purchase, code: outcome.code, message: outcome.message };
  }
  attempts.push({ type: 'execute', successful: true, payment_method: outcome.brand, extra: { card_last4: outcome.last4 }, country: 'ZA', processing_time: now, error: null });
  purchase.transaction_data.payment_method = outcome.brand;
  purchase.transaction_data.country = 'ZA';
  // Revio keeps its fee out of what it settles: net_amount = amount − fee ([P]; the rate is the sandbox's feeBps, default 0).
  const fee = Math.round((purchase.purchase.total * core.settings.feeBps) / 10_000);
  purchase.payment = {
    is_outgoing: false,
    payment_type: 'purchase',
    amount: purchase.purchase.total,
    currency: purchase.purchase.currency,
    net_amount: purchase.purchase.total - fee,
    fee_amount: fee,
    pending_amount: 0,
    pending_unfreeze_on: null,
    description: '',
    paid_on: now,
    remote_paid_on: now,
  };
  purchase.refundable_amount = purchase.purchase.total;
  core.transition(purchase, 'paid');
  core.emit('purchase.paid', purchase, purchase.success_callback);
  return { kind: 'paid', purchase };
}

function recordFailure(core: SandboxCore, purchase: Purchase, code: string, message: string, extra: Json): void {
  purchase.transaction_data.attempts.push({ type: 'execute', successful: false, payment_method: 'card', extra, country: 'ZA', processing_time: core.now(), error: { code, message } });
  core.transition(purchase, 'error');
  core.emit('purchase.payment_failure', purchase);
}

/** The REST shortcut's failure: an authorisation failure unless another code is given. */
export function failPurchase(core: SandboxCore, id: string, input: { code?: string; message?: string } = {}): Purchase {
  const purchase = getPurchase(core, id);
  if (!PAYABLE.has(purchase.status)) throw conflict(`The purchase is ${purchase.status} and cannot take a payment attempt.`);
  recordFailure(core, purchase, input.code ?? 'authorization_failed', input.message ?? 'Authorisation failed: the CVC does not match.', { card_last4: '1111' });
  return purchase;
}

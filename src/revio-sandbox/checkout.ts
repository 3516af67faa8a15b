// The hosted checkout page at each purchase's checkout_url (/p/<id>/): a card
// form prefilled with Revio's success test card, a "Pay" button that charges
// the card entered, and a "Fail" button that charges it with a wrong CVC (an
// authorisation failure). No JavaScript; plain form posts.
import express, { type Response, type Router } from 'express';
import type { Purchase } from '../revio/types.ts';
import { successCard, TEST_CVC, type CardInput } from './cards.ts';
import type { SandboxCore } from './core.ts';
import { escapeHtml, formatMoney, page, PAGE_HEADERS } from './html.ts';
import { getPurchase, PAYABLE, payPurchase, viewPurchase } from './purchases.ts';

const WRONG_CVC = '000';

function render(res: Response, status: number, title: string, body: string): void {
  res.status(status).set(PAGE_HEADERS).send(page(title, body));
}

function summary(purchase: Purchase): string {
  const items = purchase.purchase.products.map((p) => p.name).join(', ');
  return `<h1>Pay ${escapeHtml(items)}</h1>
<p class="amount" data-testid="amount">${escapeHtml(formatMoney(purchase.purchase.total, purchase.purchase.currency))}</p>
<p class="hint">Reference ${escapeHtml(purchase.reference || purchase.reference_generated)} · ${escapeHtml(purchase.client.email)}</p>`;
}

function form(purchase: Purchase, card: CardInput, message?: { kind: 'error' | 'ok'; text: string }): string {
  const alert = message ? `<div class="alert ${message.kind}" role="alert">${escapeHtml(message.text)}</div>` : '';
  const value = (v: string | undefined) => `value="${escapeHtml(v ?? '')}"`;
  return `${summary(purchase)}
${alert}
<form method="post" action="/p/${escapeHtml(purchase.id)}/pay/">
  <label for="number">Card number</label>
  <input id="number" name="number" inputmode="numeric" autocomplete="cc-number" ${value(card.number)}>
  <label for="name">Name on card</label>
  <input id="name" name="name" autocomplete="cc-name" ${value(card.name)}>
  <div class="row">
    <div><label for="expiry">Expiry (MM/YY)</label><input id="expiry" name="expiry" autocomplete="cc-exp" ${value(card.expiry)}></div>
    <div><label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" ${value(card.cvc)}></div>
  </div>
  <div class="buttons">
    <button class="pay" type="submit" name="outcome" value="pay">Pay</button>
    <button class="fail" type="submit" name="outcome" value="fail">Fail</button>
  </div>
</form>
<p class="hint">Test cards: 4444 3333 2222 1111 or 5555 5555 5555 4444, any name, any future expiry, CVC ${TEST_CVC}.
A wrong CVC is declined; a past expiry is refused. "Fail" sends the card with a wrong CVC.</p>`;
}

function finalPage(res: Response, purchase: Purchase): void {
  const paid = purchase.status === 'paid' || purchase.status === 'cleared' || purchase.status === 'settled';
  const text = paid ? 'Payment successful. You can close this page.' : `This purchase is ${purchase.status} and can no longer be paid.`;
  const redirect = paid ? purchase.success_redirect : purchase.cancel_redirect;
  const back = redirect ? `<p><a href="${escapeHtml(redirect)}">Return to the merchant</a></p>` : '';
  render(res, 200, paid ? 'Paid' : 'Not payable', `${summary(purchase)}<div class="alert ${paid ? 'ok' : 'error'}" role="status" data-testid="status">${escapeHtml(text)}</div>${back}`);
}

function notFoundPage(res: Response): void {
  render(res, 404, 'Not found', '<h1>No such purchase</h1><p>The checkout link is wrong or the purchase was removed.</p>');
}

export function checkoutRouter(core: SandboxCore): Router {
  const router = express.Router();
  router.get('/:id/', (req, res) => {
    if (!core.store.state.purchases[req.params.id]) return notFoundPage(res);
    const purchase = viewPurchase(core, req.params.id);
    if (!PAYABLE.has(purchase.status)) return finalPage(res, purchase);
    const last = purchase.transaction_data.attempts.at(-1)?.error;
    const message = purchase.status === 'error' && last ? { kind: 'error' as const, text: `Payment failed: ${last.message} You can try again.` } : undefined;
    render(res, 200, 'Revio checkout', form(purchase, successCard(), message));
  });

  router.post('/:id/pay/', express.urlencoded({ extended: false, limit: '10kb' }), (req, res) => {
    if (!core.store.state.purchases[req.params.id]) return notFoundPage(res);
    const purchase = getPurchase(core, req.params.id);
    if (!PAYABLE.has(purchase.status)) return finalPage(res, purchase);
    const fields = (req.body ?? {}) as Record<string, string>;
    const card: CardInput = { number: fields.number, name: fields.name, expiry: fields.expiry, cvc: fields.outcome === 'fail' ? WRONG_CVC : fields.cvc };
    const result = payPurchase(core, purchase.id, card);
    const shown = { ...card, cvc: fields.cvc };
    if (result.kind === 'invalid') return render(res, 400, 'Revio checkout', form(purchase, shown, { kind: 'error', text: result.message }));
    if (result.kind === 'paid') {
      if (purchase.success_redirect) return void res.redirect(303, purchase.success_redirect);
      return finalPage(res, purchase);
    }
    if (purchase.failure_redirect) return void res.redirect(303, purchase.failure_redirect);
    render(res, 402, 'Revio checkout', form(purchase, shown, { kind: 'error', text: `Payment failed: ${result.message} You can try again.` }));
  });
  return router;
}

// The sandbox's own endpoints under /_sandbox/ (not part of Revio's API, no
// auth: the sandbox listens on 127.0.0.1 by default):
// - GET  /_sandbox/                         a console page for people (objects, buttons, deliveries)
// - GET|PUT|PATCH|DELETE /_sandbox/faults   the failure knobs (PUT replaces, PATCH merges, DELETE clears)
// - POST /_sandbox/purchases/<id>/pay|fail  pay (optional {"card": {...}}) or fail (optional {"code","message"})
// - POST /_sandbox/payouts/<id>/succeed|fail
// - POST /_sandbox/purchases/<id>/refund|chargeback   Revio refunding on its own / a card chargeback (optional {"amount"})
// - PUT  /_sandbox/refund-mode {"mode":"instant"|"pending"}; POST /_sandbox/purchases/<id>/refund/complete|fail
// - GET  /_sandbox/deliveries?object_id=&event_type=&state=
// JSON in, JSON out; the console's form posts are answered with a redirect back.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ApiError } from './api-errors.ts';
import type { CardInput } from './cards.ts';
import type { SandboxCore } from './core.ts';
import { FaultsError, type SandboxFaultsInput } from './faults.ts';
import { escapeHtml, formatMoney, page, PAGE_HEADERS } from './html.ts';
import { failPayout, succeedPayout } from './payouts.ts';
import { failPurchase, PAYABLE, payPurchase } from './purchases.ts';
import { finishPendingRefund, providerReversal } from './refunds.ts';
import { send } from './routes.ts';
import type { Delivery } from './store.ts';

const fromForm = (req: Request) => typeof req.is('application/x-www-form-urlencoded') === 'string';

/** Delivery records without the body (the body is the object snapshot; ask for it with ?body=1). */
export function describeDelivery(d: Delivery, withBody = false) {
  const { body, signature: _signature, ...rest } = d;
  return withBody ? { ...rest, body: JSON.parse(body) as unknown } : rest;
}

export function adminRouter(core: SandboxCore): Router {
  const router = express.Router();
  router.use(express.json({ limit: '100kb' }), express.urlencoded({ extended: false, limit: '10kb' }));

  const act = (handler: (req: Request) => unknown) => (req: Request, res: Response, next: NextFunction) => {
    try {
      const body = handler(req);
      if (fromForm(req)) return void res.redirect(303, '/_sandbox/');
      send(res, { status: 200, body });
    } catch (error) {
      if (error instanceof FaultsError) return send(res, new ApiError(400, { code: 'invalid_request', message: error.message }));
      if (error instanceof ApiError) return send(res, error);
      next(error);
    }
  };
  const changedFaults = () => {
    core.engine.poke();
    return core.faults.get();
  };

  router.get('/faults', act(() => core.faults.get()));
  router.put('/faults', act((req) => (core.faults.replace((req.body ?? {}) as SandboxFaultsInput), changedFaults())));
  router.patch('/faults', act((req) => (core.faults.patch((req.body ?? {}) as SandboxFaultsInput), changedFaults())));
  router.delete('/faults', act(() => (core.faults.reset(), changedFaults())));

  router.post('/purchases/:id/pay', act((req) => {
    const card = (req.body?.card ?? undefined) as CardInput | undefined;
    const result = payPurchase(core, req.params.id as string, card);
    if (result.kind === 'invalid') throw new ApiError(400, { code: 'invalid_request', message: result.message });
    return result.purchase;
  }));
  router.post('/purchases/:id/fail', act((req) => failPurchase(core, req.params.id as string, fromForm(req) ? {} : req.body ?? {})));
  const amountOf = (req: Request) => (fromForm(req) ? {} : { amount: req.body?.amount });
  router.post('/purchases/:id/refund', act((req) => providerReversal(core, req.params.id as string, 'refund', amountOf(req))));
  router.post('/purchases/:id/chargeback', act((req) => providerReversal(core, req.params.id as string, 'chargeback', amountOf(req))));
  router.post('/purchases/:id/refund/complete', act((req) => finishPendingRefund(core, req.params.id as string, true)));
  router.post('/purchases/:id/refund/fail', act((req) => finishPendingRefund(core, req.params.id as string, false)));
  router.get('/refund-mode', act(() => ({ mode: core.refundMode })));
  router.put('/refund-mode', act((req) => {
    const mode = req.body?.mode;
    if (mode !== 'instant' && mode !== 'pending') throw new ApiError(400, { code: 'invalid_request', message: 'mode must be "instant" or "pending".' });
    core.refundMode = mode;
    return { mode };
  }));
  router.post('/payouts/:id/succeed', act((req) => succeedPayout(core, req.params.id as string)));
  router.post('/payouts/:id/fail', act((req) => failPayout(core, req.params.id as string, fromForm(req) ? {} : req.body ?? {})));

  router.get('/deliveries', act((req) => {
    const q = req.query as Record<string, string | undefined>;
    return core.store.state.deliveries
      .filter((d) => (!q.object_id || d.objectId === q.object_id) && (!q.event_type || d.eventType === q.event_type) && (!q.state || d.state === q.state))
      .map((d) => describeDelivery(d, q.body === '1'));
  }));

  router.get('/', (_req, res) => {
    res.status(200).set(PAGE_HEADERS).send(page('Revio sandbox console', consoleHtml(core)));
  });
  router.use((_req: Request, res: Response) => send(res, new ApiError(404, { code: 'not_found', message: 'Not found.' })));
  return router;
}

function consoleHtml(core: SandboxCore): string {
  const state = core.store.state;
  const button = (action: string, label: string, cls: string) =>
    `<form method="post" action="${escapeHtml(action)}" style="display:inline"><button class="small ${cls}" type="submit">${escapeHtml(label)}</button></form>`;
  const purchases = Object.values(state.purchases).slice(-50).reverse().map((p) => `<tr>
    <td><a href="${escapeHtml(p.checkout_url)}">${escapeHtml(p.id.slice(0, 8))}</a></td><td>${escapeHtml(p.reference)}</td>
    <td>${escapeHtml(formatMoney(p.purchase.total, p.purchase.currency))}</td><td>${escapeHtml(p.status)}</td>
    <td>${PAYABLE.has(p.status) ? button(`/_sandbox/purchases/${p.id}/pay`, 'Pay', 'pay') + ' ' + button(`/_sandbox/purchases/${p.id}/fail`, 'Fail', 'fail') : ''}${
      state.pendingRefunds?.[p.id] !== undefined
        ? button(`/_sandbox/purchases/${p.id}/refund/complete`, 'Complete refund', 'pay') + ' ' + button(`/_sandbox/purchases/${p.id}/refund/fail`, 'Fail refund', 'fail')
        : Number(p.refundable_amount ?? 0) > 0 && ['paid', 'cleared', 'settled', 'refunded', 'chargeback'].includes(p.status)
          ? button(`/_sandbox/purchases/${p.id}/refund`, 'Refund (by Revio)', 'fail') + ' ' + button(`/_sandbox/purchases/${p.id}/chargeback`, 'Chargeback', 'fail')
          : ''}</td></tr>`).join('');
  const payouts = Object.values(state.payouts).slice(-50).reverse().map((p) => `<tr>
    <td>${escapeHtml(p.id.slice(0, 8))}</td><td>${escapeHtml(p.reference)}</td>
    <td>${escapeHtml(formatMoney(p.payment.amount, p.payment.currency))}</td><td>${escapeHtml(p.status)}</td>
    <td>${p.status === 'pending' ? button(`/_sandbox/payouts/${p.id}/succeed`, 'Succeed', 'pay') + ' ' : ''}${p.status === 'pending' || p.status === 'initialized' ? button(`/_sandbox/payouts/${p.id}/fail`, 'Fail', 'fail') : ''}</td></tr>`).join('');
  const webhooks = Object.values(state.webhooks).map((w) => `<tr><td>${escapeHtml(w.title)}</td><td><code>${escapeHtml(w.callback)}</code></td><td>${w.all_events ? 'all events' : escapeHtml(w.events.join(', '))}</td></tr>`).join('');
  const deliveries = state.deliveries.slice(-30).reverse().map((d) => `<tr><td>${escapeHtml(d.eventType)}</td><td>${escapeHtml(d.objectId.slice(0, 8))}</td>
    <td>${escapeHtml(d.state)}${d.duplicateOf ? ' (duplicate)' : ''}</td><td>${d.attempts.length}</td><td>${escapeHtml(d.attempts.at(-1)?.status ?? d.attempts.at(-1)?.error ?? '')}</td></tr>`).join('');
  const empty = (cols: number) => `<tr><td colspan="${cols}" class="hint">none yet</td></tr>`;
  return `<h1>Revio sandbox console</h1>
<p class="hint">API <code>${escapeHtml(core.publicUrl)}/api/v1/</code> · brand <code>${escapeHtml(core.settings.brandId)}</code> · faults: <code>${escapeHtml(JSON.stringify(core.faults.get()))}</code> · refunds: <code>${escapeHtml(core.refundMode)}</code> · fee: <code>${core.settings.feeBps} bps</code></p>
<h2>Purchases</h2><table><tr><th>id</th><th>reference</th><th>amount</th><th>status</th><th></th></tr>${purchases || empty(5)}</table>
<h2>Payouts</h2><table><tr><th>id</th><th>reference</th><th>amount</th><th>status</th><th></th></tr>${payouts || empty(5)}</table>
<h2>Webhooks</h2><table><tr><th>title</th><th>callback</th><th>events</th></tr>${webhooks || empty(3)}</table>
<h2>Recent deliveries</h2><table><tr><th>event</th><th>object</th><th>state</th><th>attempts</th><th>last</th></tr>${deliveries || empty(5)}</table>`;
}

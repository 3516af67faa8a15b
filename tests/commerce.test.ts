// Commerce end to end over GraphQL against real PostgreSQL (own database,
// worker with cron off, Revio sandbox): merchants, the catalogue and its RLS,
// wallet purchases (prices of the moment, fee, idempotency, oversell races),
// reservations (confirm, expiry by the worker and lazily, confirm-vs-expiry
// races), card purchases through the deposit machinery, refunds, reports,
// suspension and merchant payouts. Every test ends with the audit views empty.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { grantAdmin } from '../src/cli/admin-grant.ts';
import { PASSWORD } from './helpers/api.ts';
import {
  HEALTHY, ORDER_FIELDS, becomeMerchant, codeOf, commerceHealth, confirm, createProduct, fundSql, merchantBalance, purchase, reserve, stockOf,
} from './helpers/commerce.ts';
import { balance, depositRow, eventually, postWebhook, runJob, signUp, startPaymentsStack, type PaymentsStack, type Person } from './helpers/payments.ts';

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('commerce');
  await stack.owner.query(`update app_private.commerce_settings set value = 200 where name = 'platform_fee_bps'`);
}, 60_000);
afterAll(async () => {
  await stack?.close();
});
afterEach(async () => {
  expect(await commerceHealth(stack)).toEqual(HEALTHY);
});

async function buyer(label: string, funds = 0): Promise<Person> {
  const person = await signUp(stack, label);
  if (funds > 0) await fundSql(stack, person.walletId, funds);
  return person;
}
async function merchant(label: string, name = `Shop ${label}`): Promise<Person> {
  const person = await signUp(stack, label);
  await becomeMerchant(stack, person, name);
  return person;
}

describe('merchants and the catalogue', () => {
  it('a user becomes a merchant and lists products; anonymous visitors read the active catalogue', async () => {
    const shop = await merchant('cat-shop', 'Corner Shop');
    const tea = await createProduct(stack, shop, { name: 'Rooibos', price: 4500, stock: 10 });
    const old = await createProduct(stack, shop, { name: 'Old stock', price: 100, stock: null });
    const off = await stack.graphql(`mutation($id: UUID!) { updateProduct(input: { productId: $id, active: false }) { result { active } } }`, { id: old.rowId }, shop.token);
    expect(off.data.updateProduct.result.active).toBe(false);

    const anonymous = await stack.graphql(`{ allProducts(condition: { merchantId: "${shop.userId}" }) { nodes { name price stock merchantByMerchantId { displayName } } } }`);
    expect(anonymous.data.allProducts.nodes).toEqual([{ name: 'Rooibos', price: '4500', stock: 10, merchantByMerchantId: { displayName: 'Corner Shop' } }]);
    const mine = await stack.graphql(`{ myProducts { nodes { name active } } }`, {}, shop.token);
    expect(mine.data.myProducts.nodes).toEqual([{ name: 'Rooibos', active: true }, { name: 'Old stock', active: false }]);
    expect(tea.price).toBe('4500');
  });

  it('only the owner merchant changes a product; non-merchants cannot list; bad input is refused', async () => {
    const a = await merchant('rls-a');
    const b = await merchant('rls-b');
    const plain = await buyer('rls-plain');
    const product = await createProduct(stack, a, { price: 1000, stock: 5 });
    const hidden = await createProduct(stack, a, { price: 1000, stock: 5, name: 'Hidden' });
    await stack.graphql(`mutation($id: UUID!) { updateProduct(input: { productId: $id, active: false }) { result { active } } }`, { id: hidden.rowId }, a.token);

    const steal = await stack.graphql(`mutation($id: UUID!) { updateProduct(input: { productId: $id, price: "1" }) { result { price } } }`, { id: product.rowId }, b.token);
    expect(codeOf(steal)).toBe('PRODUCT_NOT_FOUND');
    const restock = await stack.graphql(`mutation($id: UUID!) { setProductStock(input: { productId: $id, stock: 999 }) { result { stock } } }`, { id: product.rowId }, b.token);
    expect(codeOf(restock)).toBe('PRODUCT_NOT_FOUND');
    const peek = await stack.graphql(`query($id: UUID!) { productByRowId(rowId: $id) { name } }`, { id: hidden.rowId }, b.token);
    expect(peek.data.productByRowId).toBeNull();
    expect(codeOf(await stack.graphql(`mutation { createProduct(input: { name: "X", price: "100", currency: "ZAR" }) { result { rowId } } }`, {}, plain.token))).toBe('MERCHANT_REQUIRED');
    expect(codeOf(await stack.graphql(`mutation { createProduct(input: { name: "X", price: "0", currency: "ZAR" }) { result { rowId } } }`, {}, a.token))).toBe('PRODUCT_INVALID');
    expect(codeOf(await stack.graphql(`mutation { createProduct(input: { name: "X", price: "10", currency: "XXX" }) { result { rowId } } }`, {}, a.token))).toBe('CURRENCY_INVALID');
    expect(codeOf(await stack.graphql(`mutation { becomeMerchant(input: { displayName: "  " }) { result { rowId } } }`, {}, plain.token))).toBe('MERCHANT_NAME_INVALID');
    const { rows } = await stack.owner.query(`select price, stock from app_public.products where id = $1`, [product.rowId]);
    expect(rows[0]).toEqual({ price: '1000', stock: 5 });
  });
});

describe('purchase from the wallet', () => {
  it('moves the money in one entry (merchant net, platform fee), takes the stock, keeps the price of the moment', async () => {
    const shop = await merchant('buy-shop');
    const alice = await buyer('buy-alice', 100_000);
    const mug = await createProduct(stack, shop, { name: 'Mug', price: 12_000, stock: 3 });
    const pen = await createProduct(stack, shop, { name: 'Pen', price: 500, stock: null });

    const r = await purchase(stack, alice, [{ productId: mug.rowId, quantity: 2 }, { productId: pen.rowId, quantity: 1 }], 'k1');
    expect(r.errors).toBeUndefined();
    const order = r.data.purchase.result;
    expect(order).toMatchObject({ status: 'paid', paymentMethod: 'wallet', total: '24500', fee: '490', refunded: '0', buyerId: alice.userId, merchantId: shop.userId });
    expect(await balance(stack, alice.walletId)).toEqual({ balance: 75_500n, held: 0n });
    expect(await merchantBalance(stack, shop.userId)).toBe(24_010n);
    expect(await stockOf(stack, mug.rowId)).toBe(1);
    expect(await stockOf(stack, pen.rowId)).toBeNull();
    const entry = await stack.owner.query(`select e.kind, count(p.*)::int as legs from app_public.orders o join ledger.entries e on e.id = o.entry_id join ledger.postings p on p.entry_id = e.id where o.id = $1 group by e.kind`, [order.rowId]);
    expect(entry.rows).toEqual([{ kind: 'purchase', legs: 3 }]);

    // A later price change leaves the order's lines alone.
    await stack.graphql(`mutation($id: UUID!) { updateProduct(input: { productId: $id, price: "99999" }) { result { price } } }`, { id: mug.rowId }, shop.token);
    const detail = await stack.graphql(`query($id: UUID!) { orderByRowId(rowId: $id) { orderLinesByOrderId { nodes { quantity unitPrice amount fee } } } }`, { id: order.rowId }, alice.token);
    const lines = [...detail.data.orderByRowId.orderLinesByOrderId.nodes].sort((x, y) => Number(y.unitPrice) - Number(x.unitPrice));
    expect(lines).toEqual([
      { quantity: 2, unitPrice: '12000', amount: '24000', fee: '480' },
      { quantity: 1, unitPrice: '500', amount: '500', fee: '10' },
    ]);
    // The buyer's wallet history shows a purchase.
    const history = await stack.graphql(`query($id: UUID!) { walletByRowId(rowId: $id) { transactions(first: 10) { nodes { kind amount } } } }`, { id: alice.walletId }, alice.token);
    expect(history.data.walletByRowId.transactions.nodes).toContainEqual({ kind: 'purchase', amount: '-24500' });
  });

  it('a purchase that cannot be filled changes nothing and says why', async () => {
    const shop = await merchant('fail-shop');
    const other = await merchant('fail-other');
    const bob = await buyer('fail-bob', 1_000);
    const cheap = await createProduct(stack, shop, { price: 100, stock: 2 });
    const dear = await createProduct(stack, shop, { price: 5_000, stock: 2 });
    const elsewhere = await createProduct(stack, other, { price: 100, stock: 2 });
    const usd = await createProduct(stack, shop, { price: 100, stock: 2, currency: 'USD' });

    expect(codeOf(await purchase(stack, bob, [{ productId: cheap.rowId, quantity: 3 }], 'f1'))).toBe('OUT_OF_STOCK');
    expect(codeOf(await purchase(stack, bob, [{ productId: cheap.rowId, quantity: 1 }, { productId: dear.rowId, quantity: 1 }], 'f2'))).toBe('INSUFFICIENT_FUNDS');
    expect(codeOf(await purchase(stack, bob, [{ productId: cheap.rowId, quantity: 1 }, { productId: elsewhere.rowId, quantity: 1 }], 'f3'))).toBe('ORDER_MIXED');
    expect(codeOf(await purchase(stack, bob, [{ productId: usd.rowId, quantity: 1 }], 'f4'))).toBe('WALLET_NOT_FOUND');
    expect(codeOf(await purchase(stack, bob, [{ productId: randomUUID(), quantity: 1 }], 'f5'))).toBe('PRODUCT_NOT_AVAILABLE');
    expect(codeOf(await purchase(stack, bob, [{ productId: cheap.rowId, quantity: 0 }], 'f6'))).toBe('ORDER_ITEMS_INVALID');
    expect(codeOf(await purchase(stack, bob, [], 'f7'))).toBe('ORDER_ITEMS_INVALID');
    expect(codeOf(await purchase(stack, shop, [{ productId: cheap.rowId, quantity: 1 }], 'f8'))).toBe('PURCHASE_FROM_SELF');
    expect(codeOf(await stack.graphql(`mutation { purchase(input: { items: [], idempotencyKey: "x" }) { result { rowId } } }`))).toBeDefined();

    expect(await stockOf(stack, cheap.rowId)).toBe(2);
    expect(await stockOf(stack, dear.rowId)).toBe(2);
    expect(await balance(stack, bob.walletId)).toEqual({ balance: 1_000n, held: 0n });
    const orders = await stack.graphql(`{ myOrders { totalCount } }`, {}, bob.token);
    expect(orders.data.myOrders.totalCount).toBe(0);
  });

  it('duplicate idempotency keys: 10 identical requests at once make one order; another request with the key is refused', async () => {
    const shop = await merchant('idem-shop');
    const carol = await buyer('idem-carol', 50_000);
    const book = await createProduct(stack, shop, { price: 1_000, stock: 100 });
    const results = await Promise.all(Array.from({ length: 10 }, () => purchase(stack, carol, [{ productId: book.rowId, quantity: 2 }], 'same-key')));
    expect(results.map((r) => r.errors)).toEqual(Array(10).fill(undefined));
    expect(new Set(results.map((r) => r.data.purchase.result.rowId)).size).toBe(1);
    expect(await stockOf(stack, book.rowId)).toBe(98);
    expect(await balance(stack, carol.walletId)).toEqual({ balance: 48_000n, held: 0n });
    expect(codeOf(await purchase(stack, carol, [{ productId: book.rowId, quantity: 3 }], 'same-key'))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(codeOf(await reserve(stack, carol, [{ productId: book.rowId, quantity: 2 }], 'same-key'))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await stockOf(stack, book.rowId)).toBe(98);
  });

  it('64 clients racing for the last 20 units: exactly 20 sold, never oversold', async () => {
    const shop = await merchant('race-shop');
    const ticket = await createProduct(stack, shop, { price: 700, stock: 20 });
    const buyers = await Promise.all(Array.from({ length: 16 }, (_, i) => buyer(`race-${i}`, 10_000)));
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => purchase(stack, buyers[i % 16], [{ productId: ticket.rowId, quantity: 1 }], `race-${i}`)));
    const codes = results.map((r) => (r.errors ? codeOf(r) : 'OK'));
    expect(codes.filter((c) => c === 'OK')).toHaveLength(20);
    expect(codes.filter((c) => c !== 'OK')).toEqual(Array(44).fill('OUT_OF_STOCK'));
    expect(await stockOf(stack, ticket.rowId)).toBe(0);
    expect(await merchantBalance(stack, shop.userId)).toBe(20n * (700n - 14n));
    const sold = await stack.owner.query(`select sum(quantity)::int as n from app_public.order_lines where product_id = $1`, [ticket.rowId]);
    expect(sold.rows[0].n).toBe(20);
  });
});

describe('reservations', () => {
  const ALL_FIELDS = ORDER_FIELDS;

  it('reserve holds stock and money; confirm pays the merchant; confirming again changes nothing', async () => {
    const shop = await merchant('res-shop');
    const dan = await buyer('res-dan', 10_000);
    const seat = await createProduct(stack, shop, { price: 2_500, stock: 4 });
    const r = await reserve(stack, dan, [{ productId: seat.rowId, quantity: 2 }], 'r1');
    const order = r.data.reserveItems.result;
    expect(order).toMatchObject({ status: 'reserved', total: '5000' });
    const minutes = (Date.parse(order.expiresAt) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(9);
    expect(minutes).toBeLessThanOrEqual(10);
    expect(await stockOf(stack, seat.rowId)).toBe(2);
    expect(await balance(stack, dan.walletId)).toEqual({ balance: 10_000n, held: 5_000n });
    const again = await reserve(stack, dan, [{ productId: seat.rowId, quantity: 2 }], 'r1');
    expect(again.data.reserveItems.result.rowId).toBe(order.rowId);

    const paid = await confirm(stack, dan, order.rowId);
    expect(paid.data.confirmReservation.result).toMatchObject({ status: 'paid', total: '5000', fee: '100' });
    expect(await balance(stack, dan.walletId)).toEqual({ balance: 5_000n, held: 0n });
    expect(await merchantBalance(stack, shop.userId)).toBe(4_900n);
    expect((await confirm(stack, dan, order.rowId)).data.confirmReservation.result.status).toBe('paid');
    expect(await balance(stack, dan.walletId)).toEqual({ balance: 5_000n, held: 0n });
    expect(await stockOf(stack, seat.rowId)).toBe(2);
    // Someone else cannot confirm or see it.
    const eve = await buyer('res-eve');
    expect(codeOf(await confirm(stack, eve, order.rowId))).toBe('ORDER_NOT_FOUND');
    void ALL_FIELDS;
  });

  it('the worker expires unconfirmed reservations: stock and money come back exactly once', async () => {
    const shop = await merchant('exp-shop');
    const erin = await buyer('exp-erin', 10_000);
    const seat = await createProduct(stack, shop, { price: 1_000, stock: 3 });
    const order = (await reserve(stack, erin, [{ productId: seat.rowId, quantity: 3 }], 'e1')).data.reserveItems.result;
    expect(await stockOf(stack, seat.rowId)).toBe(0);
    await stack.owner.query(`update app_public.orders set expires_at = now() - interval '1 second' where id = $1`, [order.rowId]);

    await runJob(stack, 'commerce_expire_reservations');
    await runJob(stack, 'commerce_expire_reservations');
    expect(await stockOf(stack, seat.rowId)).toBe(3);
    expect(await balance(stack, erin.walletId)).toEqual({ balance: 10_000n, held: 0n });
    const late = await confirm(stack, erin, order.rowId);
    expect(late.data.confirmReservation.result.status).toBe('expired');
    expect(await merchantBalance(stack, shop.userId)).toBe(0n);
  });

  it('an overdue reservation is released lazily when its units are wanted or it is confirmed late', async () => {
    const shop = await merchant('lazy-shop');
    const fay = await buyer('lazy-fay', 10_000);
    const gus = await buyer('lazy-gus', 10_000);
    const seat = await createProduct(stack, shop, { price: 1_000, stock: 1 });
    const held = (await reserve(stack, fay, [{ productId: seat.rowId, quantity: 1 }], 'l1')).data.reserveItems.result;
    expect(codeOf(await purchase(stack, gus, [{ productId: seat.rowId, quantity: 1 }], 'l2'))).toBe('OUT_OF_STOCK');
    await stack.owner.query(`update app_public.orders set expires_at = now() - interval '1 second' where id = $1`, [held.rowId]);
    // No worker run: the purchase itself releases the overdue reservation.
    const bought = await purchase(stack, gus, [{ productId: seat.rowId, quantity: 1 }], 'l3');
    expect(bought.data.purchase.result.status).toBe('paid');
    expect(await balance(stack, fay.walletId)).toEqual({ balance: 10_000n, held: 0n });
    expect((await confirm(stack, fay, held.rowId)).data.confirmReservation.result.status).toBe('expired');

    const other = (await reserve(stack, fay, [{ productId: (await createProduct(stack, shop, { price: 300, stock: 1 })).rowId, quantity: 1 }], 'l4')).data.reserveItems.result;
    await stack.owner.query(`update app_public.orders set expires_at = now() - interval '1 second' where id = $1`, [other.rowId]);
    expect((await confirm(stack, fay, other.rowId)).data.confirmReservation.result.status).toBe('expired');
    expect(await balance(stack, fay.walletId)).toEqual({ balance: 10_000n, held: 0n });
  });

  it('confirmation racing expiry: each reservation ends paid or expired, never both, never neither', async () => {
    const shop = await merchant('cve-shop');
    const seat = await createProduct(stack, shop, { price: 1_000, stock: 40 });
    const people = await Promise.all(Array.from({ length: 20 }, (_, i) => buyer(`cve-${i}`, 5_000)));
    const orders = await Promise.all(people.map(async (p, i) => (await reserve(stack, p, [{ productId: seat.rowId, quantity: 2 }], `cve-${i}`)).data.reserveItems.result));
    // Every reservation falls due within the next ~150 ms, while confirmations
    // and expiry passes run at the same time.
    await stack.owner.query(`update app_public.orders set expires_at = now() + (random() * interval '150 milliseconds') where id = any($1)`, [orders.map((o) => o.rowId)]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const expiries = Array.from({ length: 6 }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 25));
      await stack.owner.query(`select commerce.expire_reservations(50)`);
    });
    const confirmations = await Promise.all(people.map((p, i) => confirm(stack, p, orders[i].rowId)));
    await Promise.all(expiries);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await stack.owner.query(`select commerce.expire_reservations(50)`);

    expect(confirmations.map((c) => c.errors)).toEqual(Array(20).fill(undefined));
    const { rows } = await stack.owner.query(`select id, status from app_public.orders where id = any($1)`, [orders.map((o) => o.rowId)]);
    const paid = rows.filter((r) => r.status === 'paid').length;
    const expired = rows.filter((r) => r.status === 'expired').length;
    expect(paid + expired).toBe(20);
    for (const [i, p] of people.entries()) {
      const status = rows.find((r) => r.id === orders[i].rowId).status;
      expect(await balance(stack, p.walletId)).toEqual({ balance: status === 'paid' ? 3_000n : 5_000n, held: 0n });
    }
    expect(await stockOf(stack, seat.rowId)).toBe(40 - 2 * paid);
    expect(await merchantBalance(stack, shop.userId)).toBe(BigInt(paid) * 1_960n);
    const open = await stack.owner.query(`select count(*)::int as n from ledger.holds h join app_public.orders o on o.hold_id = h.id where o.id = any($1) and h.status = 'placed'`, [orders.map((o) => o.rowId)]);
    expect(open.rows[0].n).toBe(0);
  });

  it('cancelReservation gives everything back at once', async () => {
    const shop = await merchant('cancel-shop');
    const hal = await buyer('cancel-hal', 3_000);
    const seat = await createProduct(stack, shop, { price: 1_000, stock: 2 });
    const order = (await reserve(stack, hal, [{ productId: seat.rowId, quantity: 2 }], 'c1')).data.reserveItems.result;
    const r = await stack.graphql(`mutation($id: UUID!) { cancelReservation(input: { orderId: $id }) { result { status } } }`, { id: order.rowId }, hal.token);
    expect(r.data.cancelReservation.result.status).toBe('cancelled');
    expect(await stockOf(stack, seat.rowId)).toBe(2);
    expect(await balance(stack, hal.walletId)).toEqual({ balance: 3_000n, held: 0n });
    expect(codeOf(await confirm(stack, hal, order.rowId))).toBeUndefined();
  });
});

describe('purchase by card', () => {
  async function cardOrder(person: Person, productId: string, quantity: number, key: string) {
    const r = await stack.graphql(
      `mutation($i: PurchaseByCardInput!) { purchaseByCard(input: $i) { result { ${ORDER_FIELDS} } } }`,
      { i: { items: [{ productId, quantity }], idempotencyKey: key } },
      person.token,
    );
    if (!r.data?.purchaseByCard) throw new Error(JSON.stringify(r.errors));
    return r.data.purchaseByCard.result;
  }

  it('the paid webhook completes the order: money to the merchant through the buyer\'s wallet', async () => {
    const shop = await merchant('card-shop');
    const ivy = await buyer('card-ivy');
    const lamp = await createProduct(stack, shop, { price: 25_000, stock: 5 });
    const order = await cardOrder(ivy, lamp.rowId, 2, 'card-1');
    expect(order).toMatchObject({ status: 'awaiting_payment', paymentMethod: 'card', total: '50000' });
    expect(await stockOf(stack, lamp.rowId)).toBe(3);
    const deposit = await stack.graphql(`query($id: UUID!) { orderByRowId(rowId: $id) { depositByDepositId { amount status checkoutUrl } } }`, { id: order.rowId }, ivy.token);
    expect(deposit.data.orderByRowId.depositByDepositId.amount).toBe('50000');
    const purchaseId = await eventually(async () => (await depositRow(stack, order.depositId))?.revio_purchase_id ?? undefined, 10_000, 'Revio purchase');
    stack.sandbox.payPurchase(purchaseId);
    await eventually(async () => (await stack.owner.query(`select status from app_public.orders where id = $1`, [order.rowId])).rows[0].status === 'paid', 10_000, 'order paid');
    expect(await balance(stack, ivy.walletId)).toEqual({ balance: 0n, held: 0n });
    expect(await merchantBalance(stack, shop.userId)).toBe(49_000n);
    expect(await stockOf(stack, lamp.rowId)).toBe(3);
  });

  it('an expired checkout releases the stock', async () => {
    const shop = await merchant('cardx-shop');
    const jo = await buyer('cardx-jo');
    const lamp = await createProduct(stack, shop, { price: 25_000, stock: 1 });
    const order = await cardOrder(jo, lamp.rowId, 1, 'card-x');
    expect(await stockOf(stack, lamp.rowId)).toBe(0);
    const purchaseId = await eventually(async () => (await depositRow(stack, order.depositId))?.revio_purchase_id ?? undefined, 10_000, 'Revio purchase');
    const snapshot = await stack.revio.getPurchase(purchaseId);
    const now = snapshot.updated_on + 1;
    const sent = await postWebhook(stack, { ...snapshot, status: 'expired', status_history: [...snapshot.status_history, { status: 'expired', timestamp: now }], updated_on: now, event_type: 'purchase.expired' });
    expect(sent.status).toBe(200);
    const { rows } = await stack.owner.query(`select status from app_public.orders where id = $1`, [order.rowId]);
    expect(rows[0].status).toBe('expired');
    expect(await stockOf(stack, lamp.rowId)).toBe(1);
    expect(await merchantBalance(stack, shop.userId)).toBe(0n);
  });
});

describe('refunds, reports, suspension, payouts', () => {
  it('the merchant refunds in part (restocking) and then in full; the buyer gets the money back, the fee stays', async () => {
    const shop = await merchant('ref-shop');
    const kim = await buyer('ref-kim', 20_000);
    const cup = await createProduct(stack, shop, { name: 'Cup', price: 1_000, stock: 10 });
    const bowl = await createProduct(stack, shop, { name: 'Bowl', price: 3_000, stock: 10 });
    const order = (await purchase(stack, kim, [{ productId: cup.rowId, quantity: 4 }, { productId: bowl.rowId, quantity: 1 }], 'ref-1')).data.purchase.result;
    expect(order.total).toBe('7000');
    // The fee stays with the platform, so a full refund needs more than this
    // order earned: another sale provides it.
    await purchase(stack, await buyer('ref-other-buyer', 5_000), [{ productId: bowl.rowId, quantity: 1 }], 'ref-0');
    expect(await merchantBalance(stack, shop.userId)).toBe(6_860n + 2_940n);
    const REFUND = `mutation($i: RefundOrderInput!) { refundOrder(input: $i) { result { rowId amount restock } } }`;

    const part = await stack.graphql(REFUND, { i: { orderId: order.rowId, items: [{ productId: cup.rowId, quantity: 2 }], restock: true, reason: 'chipped', idempotencyKey: 'rf1' } }, shop.token);
    expect(part.data.refundOrder.result).toMatchObject({ amount: '2000', restock: true });
    const repeat = await stack.graphql(REFUND, { i: { orderId: order.rowId, items: [{ productId: cup.rowId, quantity: 2 }], restock: true, idempotencyKey: 'rf1' } }, shop.token);
    expect(repeat.data.refundOrder.result.rowId).toBe(part.data.refundOrder.result.rowId);
    expect(await stockOf(stack, cup.rowId)).toBe(8);
    expect(await balance(stack, kim.walletId)).toEqual({ balance: 15_000n, held: 0n });

    expect(codeOf(await stack.graphql(REFUND, { i: { orderId: order.rowId, items: [{ productId: cup.rowId, quantity: 3 }], idempotencyKey: 'rf2' } }, shop.token))).toBe('REFUND_INVALID');
    const other = await merchant('ref-other');
    expect(codeOf(await stack.graphql(REFUND, { i: { orderId: order.rowId, idempotencyKey: 'rf3' } }, other.token))).toBe('ORDER_NOT_FOUND');
    expect(codeOf(await stack.graphql(REFUND, { i: { orderId: order.rowId, idempotencyKey: 'rf3' } }, kim.token))).toBe('MERCHANT_REQUIRED');

    const rest = await stack.graphql(REFUND, { i: { orderId: order.rowId, idempotencyKey: 'rf4' } }, shop.token);
    expect(rest.data.refundOrder.result).toMatchObject({ amount: '5000', restock: false });
    expect(await stockOf(stack, bowl.rowId)).toBe(8);
    expect(await balance(stack, kim.walletId)).toEqual({ balance: 20_000n, held: 0n });
    expect(await merchantBalance(stack, shop.userId)).toBe(6_860n + 2_940n - 7_000n);
    const after = await stack.graphql(`query($id: UUID!) { orderByRowId(rowId: $id) { status refunded } }`, { id: order.rowId }, kim.token);
    expect(after.data.orderByRowId).toEqual({ status: 'refunded', refunded: '7000' });
  });

  it('sales reports per day and per product, visible to their merchant only; buyers see only their orders', async () => {
    const shop = await merchant('rep-shop');
    const rival = await merchant('rep-rival');
    const lea = await buyer('rep-lea', 50_000);
    const max = await buyer('rep-max', 50_000);
    const a = await createProduct(stack, shop, { name: 'Alpha', price: 1_000, stock: null });
    const b = await createProduct(stack, shop, { name: 'Beta', price: 2_500, stock: 10 });
    const o1 = (await purchase(stack, lea, [{ productId: a.rowId, quantity: 3 }], 'rep-1')).data.purchase.result;
    await purchase(stack, max, [{ productId: a.rowId, quantity: 1 }, { productId: b.rowId, quantity: 2 }], 'rep-2');
    await stack.graphql(`mutation($i: RefundOrderInput!) { refundOrder(input: $i) { result { amount } } }`,
      { i: { orderId: o1.rowId, items: [{ productId: a.rowId, quantity: 1 }], idempotencyKey: 'rep-rf' } }, shop.token);

    const daily = await stack.graphql(`{ allMerchantDailySales { nodes { currency orders units gross fees refunds net } } }`, {}, shop.token);
    expect(daily.data.allMerchantDailySales.nodes).toEqual([{ currency: 'ZAR', orders: 2, units: '6', gross: '9000', fees: '180', refunds: '1000', net: '7820' }]);
    const perProduct = await stack.graphql(`{ allMerchantProductSales(orderBy: PRODUCT_NAME_ASC) { nodes { productName orders units gross fees refunds net } } }`, {}, shop.token);
    expect(perProduct.data.allMerchantProductSales.nodes).toEqual([
      { productName: 'Alpha', orders: 2, units: '4', gross: '4000', fees: '80', refunds: '1000', net: '2920' },
      { productName: 'Beta', orders: 1, units: '2', gross: '5000', fees: '100', refunds: '0', net: '4900' },
    ]);
    expect((await stack.graphql(`{ allMerchantDailySales { nodes { orders } } }`, {}, rival.token)).data.allMerchantDailySales.nodes).toEqual([]);
    expect((await stack.graphql(`{ allMerchantDailySales { nodes { orders } } }`, {}, lea.token)).data.allMerchantDailySales.nodes).toEqual([]);
    expect((await stack.graphql(`{ merchantOrders { totalCount } }`, {}, shop.token)).data.merchantOrders.totalCount).toBe(2);
    expect((await stack.graphql(`{ allOrders { totalCount } }`, {}, rival.token)).data.allOrders.totalCount).toBe(0);
    expect((await stack.graphql(`{ allOrders { nodes { buyerId } } }`, {}, lea.token)).data.allOrders.nodes).toEqual([{ buyerId: lea.userId }]);
    expect((await stack.graphql(`{ allOrderLines { totalCount } }`, {}, max.token)).data.allOrderLines.totalCount).toBe(2);
    expect((await stack.graphql(`{ allOrders { totalCount } }`)).errors).toBeDefined();
    const auditor = await stack.owner.query(`select count(*)::int as n from audit.commerce_merchant_balances where merchant_id = $1`, [shop.userId]);
    expect(auditor.rows[0].n).toBe(1);
  });

  it('an admin suspends a merchant: its products leave the catalogue and cannot be bought', async () => {
    const shop = await merchant('sus-shop');
    const ned = await buyer('sus-ned', 5_000);
    const item = await createProduct(stack, shop, { price: 100, stock: 5 });
    const boss = await signUp(stack, 'sus-admin');
    await grantAdmin(stack.db.ownerUrl, boss.email);
    const login = await stack.graphql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, { i: { email: boss.email, password: PASSWORD } });
    const adminToken = login.data.login.accessToken;
    const SUSPEND = `mutation($i: AdminSetMerchantStatusInput!) { adminSetMerchantStatus(input: $i) { result { status } } }`;
    expect(codeOf(await stack.graphql(SUSPEND, { i: { merchantId: shop.userId, status: 'suspended', reason: 'fraud' } }, ned.token))).toBeDefined();
    const done = await stack.graphql(SUSPEND, { i: { merchantId: shop.userId, status: 'suspended', reason: 'fraud reports' } }, adminToken);
    expect(done.data.adminSetMerchantStatus.result.status).toBe('suspended');
    expect(codeOf(await purchase(stack, ned, [{ productId: item.rowId, quantity: 1 }], 's1'))).toBe('PRODUCT_NOT_AVAILABLE');
    expect((await stack.graphql(`query($id: UUID!) { productByRowId(rowId: $id) { name } }`, { id: item.rowId })).data.productByRowId).toBeNull();
    expect(codeOf(await stack.graphql(`mutation { createProduct(input: { name: "X", price: "100", currency: "ZAR" }) { result { rowId } } }`, {}, shop.token))).toBe('MERCHANT_SUSPENDED');
    const log = await stack.owner.query(`select action from audit.admin_actions where target_id = $1`, [shop.userId]);
    expect(log.rows).toEqual([{ action: 'set_merchant_status' }]);
  });

  it('a merchant moves earnings from the sharded merchant wallet to their own wallet in one entry', async () => {
    const shop = await merchant('pay-shop');
    const item = await createProduct(stack, shop, { price: 1_000, stock: null });
    const people = await Promise.all(Array.from({ length: 8 }, (_, i) => buyer(`pay-${i}`, 5_000)));
    await Promise.all(people.map((p, i) => purchase(stack, p, [{ productId: item.rowId, quantity: 2 }], `pay-${i}`)));
    const shards = await stack.owner.query(`select count(*)::int as n from ledger.accounts where owner_id = $1 and kind = 'merchant_wallet'`, [shop.userId]);
    expect(shards.rows[0].n).toBeGreaterThanOrEqual(1);
    const balances = await stack.graphql(`{ myMerchantBalances { nodes { currency balance availableBalance shards } } }`, {}, shop.token);
    expect(balances.data.myMerchantBalances.nodes).toEqual([{ currency: 'ZAR', balance: '15680', availableBalance: '15680', shards: shards.rows[0].n }]);

    const PAYOUT = `mutation($i: MerchantPayoutInput!) { merchantPayout(input: $i) { result } }`;
    expect(codeOf(await stack.graphql(PAYOUT, { i: { currency: 'ZAR', amount: '15681', idempotencyKey: 'p0' } }, shop.token))).toBe('INSUFFICIENT_FUNDS');
    const first = await stack.graphql(PAYOUT, { i: { currency: 'ZAR', amount: '15000', idempotencyKey: 'p1' } }, shop.token);
    const again = await stack.graphql(PAYOUT, { i: { currency: 'ZAR', amount: '15000', idempotencyKey: 'p1' } }, shop.token);
    expect(again.data.merchantPayout.result).toBe(first.data.merchantPayout.result);
    expect(await merchantBalance(stack, shop.userId)).toBe(680n);
    expect(await balance(stack, shop.walletId)).toEqual({ balance: 15_000n, held: 0n });
  });
});

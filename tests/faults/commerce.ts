// Commerce in the fault run (issue 11): purchases from the wallet and
// reservations that are confirmed, cancelled or left to expire, sent by the
// same clients, through the same faults, as the rest of the load. What each
// answer told the client becomes a balance effect in the harness's model; the
// checks then compare stock, orders and merchant wallets with what was asked.
import type { Rng } from './random.ts';
import { sleep } from './processes.ts';

type Outcome = 'ok' | 'rejected' | 'uncertain' | 'unavailable';

interface GqlResult {
  status: number;
  data?: any;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The parts of a load user commerce needs. */
export interface Buyer {
  email: string;
  token: string;
  walletId: string;
  estimate: number;
}

/** What a commerce request did to a buyer's balance, as far as the client knows. */
export interface CommerceOp {
  kind: 'purchase' | 'reservation';
  key: string;
  user: Buyer;
  items: { productId: string; quantity: number }[];
  /** Price × quantity at the fixed prices of the run. */
  total: number;
  outcome: Outcome;
  rowId?: string;
  /** reservation: what the client then did, and what it was answered. */
  then?: 'confirm' | 'cancel' | 'expire';
  thenOutcome?: Outcome;
  /** reservation: the order status the confirm or cancel answered. */
  thenStatus?: string;
}

export interface CommerceContext {
  seed: number;
  users: Buyer[];
  graphql: (query: string, variables: Record<string, unknown>, token?: string) => Promise<GqlResult>;
  graphqlSure: (query: string, variables: Record<string, unknown>, token?: string) => Promise<GqlResult>;
  sql: <T = any>(text: string, params?: unknown[], attempts?: number) => Promise<T[]>;
  count: (kind: string, outcome: string) => void;
  violation: (message: string) => void;
  /** The harness's sign-up (register, or sign in after a lost answer). */
  register: (email: string, fullName: string) => Promise<{ token: string; userId: string }>;
}

interface Product {
  id: string;
  merchantId: string;
  price: number;
  /** Units put on sale at set-up; null = unlimited. */
  stock: number | null;
}

/** A reservation lives this long in the run (the default is 600 s), so expiry happens under the faults too. */
const RESERVATION_SECONDS = 3;
const ORDER = 'rowId status total';
const purchaseMutation = `mutation($i: PurchaseInput!) { purchase(input: $i) { result { ${ORDER} } } }`;
const reserveMutation = `mutation($i: ReserveItemsInput!) { reserveItems(input: $i) { result { ${ORDER} } } }`;
const confirmMutation = `mutation($id: UUID!) { confirmReservation(input: { orderId: $id }) { result { ${ORDER} } } }`;
const cancelMutation = `mutation($id: UUID!) { cancelReservation(input: { orderId: $id }) { result { ${ORDER} } } }`;
const HOLDS_STOCK = new Set(['reserved', 'awaiting_payment', 'paid', 'refunded']);

export function commerceLoad(ctx: CommerceContext) {
  const products: Product[] = [];
  const merchantIds: string[] = [];
  const ops: CommerceOp[] = [];
  /** Orders the product expired (counted by checks()). */
  let expired = 0;

  /** Two merchants, each with a scarce product (races for the last units), a plentiful one and an unlimited one. */
  const setup = async () => {
    // As a DBA would: short reservations for this database (docs/commerce.md, Settings).
    await ctx.sql(`update app_private.commerce_settings set value = $1 where name = 'reservation_seconds'`, [RESERVATION_SECONDS]);
    for (let m = 0; m < 2; m++) {
      const { token } = await ctx.register(`fault-${ctx.seed}-merchant-${m}@example.com`, `Merchant ${m}`);
      const became = await ctx.graphqlSure('mutation($n: String!) { becomeMerchant(input: { displayName: $n }) { result { rowId } } }', { n: `Fault shop ${m}` }, token);
      const merchantId = became.data?.becomeMerchant?.result?.rowId as string;
      if (!merchantId) throw new Error(`becomeMerchant: ${JSON.stringify(became.errors)}`);
      merchantIds.push(merchantId);
      for (const [name, price, stock] of [['scarce', 1_500, 30], ['plenty', 700, 2_000], ['unlimited', 250, null]] as const) {
        // Product names are unique per run, so a retried create after a lost answer is recognised.
        const created = await ctx.graphqlSure(
          'mutation($i: CreateProductInput!) { createProduct(input: $i) { result { rowId } } }',
          { i: { name: `${name} ${m}`, price: String(price), currency: 'ZAR', stock } }, token);
        const rows = await ctx.sql<{ id: string }>(`select id from app_public.products where merchant_id = $1 and name = $2 order by created_at`, [merchantId, `${name} ${m}`]);
        if (!created.data?.createProduct && rows.length === 0) throw new Error(`createProduct: ${JSON.stringify(created.errors)}`);
        if (rows.length !== 1) throw new Error(`createProduct ${name} ${m}: ${rows.length} products`);
        products.push({ id: rows[0].id, merchantId, price, stock });
      }
    }
  };

  const pickItems = (r: Rng) => {
    const merchantId = r.pick(merchantIds);
    const own = products.filter((p) => p.merchantId === merchantId);
    const chosen = r.next() < 0.3 ? [own[0], r.pick(own.slice(1))] : [r.pick(own)];
    const items = chosen.map((p) => ({ productId: p.id, quantity: r.int(1, 3) }));
    const total = items.reduce((sum, item) => sum + products.find((p) => p.id === item.productId)!.price * item.quantity, 0);
    return { items, total };
  };

  const send = async (mutation: string, field: string, variables: Record<string, unknown>, token: string) => {
    try {
      const result = await ctx.graphql(mutation, variables, token);
      const order = result.data?.[field]?.result;
      if (order) return { outcome: 'ok' as Outcome, order };
      const code = result.errors?.[0]?.extensions?.code;
      if (result.status >= 500 || code === 'INTERNAL_ERROR' || !code) return { outcome: 'uncertain' as Outcome, code: code ?? `HTTP ${result.status}` };
      return { outcome: 'rejected' as Outcome, code };
    } catch (error) {
      return { outcome: ((error as { refused?: boolean }).refused ? 'unavailable' : 'uncertain') as Outcome, code: 'transport' };
    }
  };

  const label = (sent: { outcome: Outcome; code?: string }) => (sent.outcome === 'rejected' ? `rejected ${sent.code}` : sent.outcome);

  /** A purchase from the wallet; one in five repeats an earlier one (same key: the same order, nothing paid twice). */
  const doPurchase = async (r: Rng) => {
    const earlier = ops.filter((o) => o.kind === 'purchase' && o.outcome !== 'rejected' && o.outcome !== 'unavailable');
    if (earlier.length > 0 && r.next() < 0.2) {
      const op = r.pick(earlier);
      const sent = await send(purchaseMutation, 'purchase', { i: { items: op.items, idempotencyKey: op.key } }, op.user.token);
      if (sent.outcome === 'ok') {
        if (op.outcome === 'ok' && sent.order.rowId !== op.rowId) ctx.violation(`replay of purchase ${op.key} returned order ${sent.order.rowId}, the first answer ${op.rowId}`);
        if (op.outcome === 'uncertain') {
          op.outcome = 'ok';
          op.rowId = sent.order.rowId;
        }
      } else if (sent.outcome === 'rejected' && op.outcome === 'ok') {
        ctx.violation(`replay of acknowledged purchase ${op.key} (${op.rowId}) was rejected with ${sent.code}`);
      }
      return ctx.count('purchase replay', label(sent));
    }
    const user = r.pick(ctx.users);
    const { items, total } = pickItems(r);
    const op: CommerceOp = { kind: 'purchase', key: `buy-${ops.length}-${r.int(0, 1e9)}`, user, items, total, outcome: 'uncertain' };
    ops.push(op);
    const sent = await send(purchaseMutation, 'purchase', { i: { items, idempotencyKey: op.key } }, user.token);
    op.outcome = sent.outcome;
    if (sent.outcome === 'ok') {
      op.rowId = sent.order.rowId;
      if (sent.order.status !== 'paid' || Number(sent.order.total) !== total) ctx.violation(`purchase ${op.key} answered ${sent.order.status} for ${sent.order.total}, asked ${total}`);
      user.estimate -= total;
    }
    ctx.count('purchase', label(sent));
  };

  /** A reservation, then (half the time) a confirmation, a cancellation, or nothing: the product expires it. */
  const doReserve = async (r: Rng) => {
    const user = r.pick(ctx.users);
    const { items, total } = pickItems(r);
    const op: CommerceOp = { kind: 'reservation', key: `res-${ops.length}-${r.int(0, 1e9)}`, user, items, total, outcome: 'uncertain' };
    ops.push(op);
    const sent = await send(reserveMutation, 'reserveItems', { i: { items, idempotencyKey: op.key } }, user.token);
    op.outcome = sent.outcome;
    ctx.count('reservation', label(sent));
    if (sent.outcome !== 'ok') return;
    op.rowId = sent.order.rowId;
    const roll = r.next();
    op.then = roll < 0.5 ? 'confirm' : roll < 0.7 ? 'cancel' : 'expire';
    if (op.then === 'expire') return;
    // Sometimes late: a confirmation after expiry must answer expired and take nothing.
    await sleep(r.next() < 0.15 ? (RESERVATION_SECONDS + 1) * 1000 : r.int(0, 500));
    const next = op.then === 'confirm'
      ? await send(confirmMutation, 'confirmReservation', { id: op.rowId }, user.token)
      : await send(cancelMutation, 'cancelReservation', { id: op.rowId }, user.token);
    op.thenOutcome = next.outcome;
    op.thenStatus = next.outcome === 'ok' ? next.order.status : undefined;
    if (op.thenStatus === 'paid') user.estimate -= total;
    ctx.count(`reservation ${op.then}`, next.outcome === 'ok' ? `ok ${op.thenStatus}` : label(next));
  };

  /**
   * The balance effects the model adds, from what the clients were told: a
   * purchase answered paid took its total; one with a lost answer took it at
   * most once; a reservation took money only if a confirmation answered paid
   * (or, with its answer lost, at most once).
   */
  const effects = () =>
    ops.flatMap((op): { user: Buyer; delta: number; certain: boolean; op: CommerceOp }[] => {
      if (op.kind === 'purchase') {
        if (op.outcome === 'ok') return [{ user: op.user, delta: -op.total, certain: true, op }];
        if (op.outcome === 'uncertain') return [{ user: op.user, delta: -op.total, certain: false, op }];
        return [];
      }
      if (op.outcome === 'rejected' || op.outcome === 'unavailable') return [];
      if (op.thenStatus === 'paid') return [{ user: op.user, delta: -op.total, certain: true, op }];
      if (op.then === 'confirm' && op.thenOutcome === 'uncertain') return [{ user: op.user, delta: -op.total, certain: false, op }];
      return [];
    });

  /** The commerce checks, each [name, failures]. */
  const checks = async (): Promise<[string, string[]][]> => {
    const orders = await ctx.sql<{ id: string; buyer_id: string; merchant_id: string; status: string; total: string; fee: string; entries: string; paid_by_buyer: string; to_merchant: string }>(`
      select o.id, o.buyer_id, o.merchant_id, o.status::text, o.total::text, o.fee::text,
             (select count(*) from ledger.entries e where e.kind = 'purchase' and e.metadata->>'order_id' = o.id::text)::text as entries,
             (select coalesce(-sum(p.amount), 0) from ledger.entries e join ledger.postings p on p.entry_id = e.id
               join ledger.accounts a on a.id = p.account_id and a.kind = 'user_wallet'
              where e.kind = 'purchase' and e.metadata->>'order_id' = o.id::text)::text as paid_by_buyer,
             (select coalesce(sum(p.amount), 0) from ledger.entries e join ledger.postings p on p.entry_id = e.id
               join ledger.accounts a on a.id = p.account_id and a.kind = 'merchant_wallet'
              where e.kind = 'purchase' and e.metadata->>'order_id' = o.id::text)::text as to_merchant
        from app_public.orders o where o.merchant_id = any($1::uuid[])`, [merchantIds]);
    const byId = new Map(orders.map((o) => [o.id, o]));
    expired = orders.filter((o) => o.status === 'expired').length;

    // Stock: what was put on sale = what is left + what orders hold (reserved, awaiting payment, sold).
    const lines = await ctx.sql<{ product_id: string; stock: number | null; stock_created: string; held: string }>(`
      select p.id as product_id, p.stock, p.stock_created::text,
             coalesce(sum(l.quantity - l.restocked_quantity) filter (where o.status::text = any($2::text[])), 0)::text as held
        from app_public.products p left join app_public.order_lines l on l.product_id = p.id left join app_public.orders o on o.id = l.order_id
       where p.id = any($1::uuid[]) group by p.id`, [products.map((p) => p.id), [...HOLDS_STOCK]]);
    const stock = lines.flatMap((row) => {
      const product = products.find((p) => p.id === row.product_id)!;
      if (product.stock === null) return row.stock === null ? [] : [`unlimited product ${row.product_id} now has stock ${row.stock}`];
      const failures: string[] = [];
      if (Number(row.stock_created) !== product.stock) failures.push(`product ${row.product_id}: stock_created ${row.stock_created}, put on sale ${product.stock}`);
      if (Number(row.stock) + Number(row.held) !== product.stock) failures.push(`product ${row.product_id}: ${row.stock} left + ${row.held} in orders ≠ ${product.stock} put on sale`);
      if (Number(row.stock) < 0) failures.push(`product ${row.product_id} oversold: stock ${row.stock}`);
      return failures;
    });
    const audit = await ctx.sql(`select * from audit.commerce_stock_mismatches`);
    stock.push(...audit.map((row) => `audit.commerce_stock_mismatches: ${JSON.stringify(row)}`));

    // Money: each paid order has one purchase entry taking its total from the buyer and giving total − fee
    // to its merchant; no other order has one; each merchant wallet holds exactly its paid orders' share.
    const money = orders.flatMap((o) => {
      const paid = o.status === 'paid' || o.status === 'refunded';
      if (!paid) return o.entries === '0' ? [] : [`order ${o.id} is ${o.status} but has ${o.entries} purchase entries`];
      if (o.entries !== '1') return [`paid order ${o.id} has ${o.entries} purchase entries`];
      if (o.paid_by_buyer !== o.total) return [`paid order ${o.id} of ${o.total}: the buyer paid ${o.paid_by_buyer}`];
      if (BigInt(o.to_merchant) !== BigInt(o.total) - BigInt(o.fee)) return [`paid order ${o.id} of ${o.total} (fee ${o.fee}): the merchant got ${o.to_merchant}`];
      return [];
    });
    const wallets = await ctx.sql<{ owner_id: string; balance: string }>(`
      select owner_id, sum(balance)::text as balance from ledger.accounts where kind = 'merchant_wallet' and owner_id = any($1::uuid[]) group by owner_id`, [merchantIds]);
    for (const merchantId of merchantIds) {
      const owed = orders.filter((o) => o.merchant_id === merchantId && (o.status === 'paid' || o.status === 'refunded'))
        .reduce((sum, o) => sum + BigInt(o.total) - BigInt(o.fee), 0n);
      const balance = BigInt(wallets.find((w) => w.owner_id === merchantId)?.balance ?? '0');
      if (balance !== owed) money.push(`merchant ${merchantId}: wallet ${balance}, paid orders owe it ${owed}`);
    }
    money.push(...(await ctx.sql(`select * from audit.commerce_order_money_mismatches`)).map((row) => `audit.commerce_order_money_mismatches: ${JSON.stringify(row)}`));

    // Answers: every order is the one the client was told of, in the state it was told.
    const answers = ops.flatMap((op) => {
      if (op.outcome !== 'ok') return [];
      const row = byId.get(op.rowId!);
      if (!row) return [`acknowledged ${op.kind} ${op.key}: order ${op.rowId} is not in the database`];
      if (Number(row.total) !== op.total) return [`${op.kind} ${op.key}: order ${row.id} is for ${row.total}, asked ${op.total}`];
      if (op.kind === 'purchase') return row.status === 'paid' ? [] : [`purchase ${op.key}: answered paid, order ${row.id} is ${row.status}`];
      if (op.thenStatus && op.thenStatus !== row.status) return [`reservation ${op.key}: ${op.then} answered ${op.thenStatus}, order ${row.id} is ${row.status}`];
      if (op.then !== 'confirm' && row.status === 'paid') return [`reservation ${op.key}: never confirmed, yet order ${row.id} is paid`];
      if (row.status === 'reserved') return [`reservation ${op.key}: order ${row.id} is still reserved after settling`];
      return [];
    });
    return [
      ['stock sold + stock left = stock created, per product; nothing oversold', stock],
      ["every order's money is in its merchant's wallet exactly once (and only paid orders')", money],
      ['every acknowledged purchase and reservation is in the database as answered', answers],
    ];
  };

  /** Liveness figures: the load's counts, and the reservations the product expired (after checks()). */
  const liveness = (acknowledged: (kind: string, pattern: RegExp) => number): [string, number][] => [
    ['purchases acknowledged', acknowledged('purchase', /^ok$/)],
    ['reservations confirmed (paid)', acknowledged('reservation confirm', /^ok paid$/)],
    ['reservations cancelled, or expired by the product', acknowledged('reservation cancel', /^ok cancelled$/) + expired],
  ];

  return { setup, doPurchase, doReserve, effects, checks, liveness };
}

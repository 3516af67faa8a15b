// Commerce test helpers over real HTTP against a payments stack (own
// database, API, worker with cron off, Revio sandbox).
import type { PaymentsStack, Person } from './payments.ts';

export const ORDER_FIELDS = 'rowId status paymentMethod total fee refunded currency merchantId buyerId expiresAt depositId';

export const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

export async function fundSql(stack: PaymentsStack, walletId: string, amount: number): Promise<void> {
  await stack.owner.query(
    `select ledger.move('deposit', ledger.system_account('revio_clearing', a.currency), a.id, $2::bigint, 'test deposit') from ledger.accounts a where a.id = $1`,
    [walletId, String(amount)],
  );
}

export async function becomeMerchant(stack: PaymentsStack, person: Person, name = 'Shop'): Promise<void> {
  const r = await stack.graphql(`mutation($n: String!) { becomeMerchant(input: { displayName: $n }) { result { rowId displayName status } } }`, { n: name }, person.token);
  if (!r.data?.becomeMerchant) throw new Error(`becomeMerchant failed: ${JSON.stringify(r.errors)}`);
}

export async function createProduct(stack: PaymentsStack, merchant: Person, fields: { name?: string; price: number; stock?: number | null; currency?: string }) {
  const r = await stack.graphql(
    `mutation($i: CreateProductInput!) { createProduct(input: $i) { result { rowId name price stock currency active } } }`,
    { i: { name: fields.name ?? 'Thing', price: String(fields.price), currency: fields.currency ?? 'ZAR', stock: fields.stock ?? null } },
    merchant.token,
  );
  if (!r.data?.createProduct) throw new Error(`createProduct failed: ${JSON.stringify(r.errors)}`);
  return r.data.createProduct.result as { rowId: string; name: string; price: string; stock: number | null };
}

export function purchase(stack: PaymentsStack, buyer: Person, items: { productId: string; quantity: number }[], key: string) {
  return stack.graphql(`mutation($i: PurchaseInput!) { purchase(input: $i) { result { ${ORDER_FIELDS} } } }`, { i: { items, idempotencyKey: key } }, buyer.token);
}

export function reserve(stack: PaymentsStack, buyer: Person, items: { productId: string; quantity: number }[], key: string) {
  return stack.graphql(`mutation($i: ReserveItemsInput!) { reserveItems(input: $i) { result { ${ORDER_FIELDS} } } }`, { i: { items, idempotencyKey: key } }, buyer.token);
}

export function confirm(stack: PaymentsStack, buyer: Person, orderId: string) {
  return stack.graphql(`mutation($id: UUID!) { confirmReservation(input: { orderId: $id }) { result { ${ORDER_FIELDS} } } }`, { id: orderId }, buyer.token);
}

export async function stockOf(stack: PaymentsStack, productId: string): Promise<number | null> {
  const { rows } = await stack.owner.query(`select stock from app_public.products where id = $1`, [productId]);
  return rows[0].stock;
}

/** The merchant wallet of a merchant in ZAR, summed over its shards. */
export async function merchantBalance(stack: PaymentsStack, merchantId: string): Promise<bigint> {
  const { rows } = await stack.owner.query(
    `select coalesce(sum(balance), 0)::text as b from ledger.accounts where owner_id = $1 and kind = 'merchant_wallet' and currency = 'ZAR'`,
    [merchantId],
  );
  return BigInt(rows[0].b);
}

/** The commerce audit views and the ledger's own checks: all empty when healthy. */
export async function commerceHealth(stack: PaymentsStack) {
  const q = async (sql: string) => (await stack.owner.query(sql)).rows;
  return {
    stock: await q(`select * from audit.commerce_stock_mismatches`),
    money: await q(`select * from audit.commerce_order_money_mismatches`),
    trial: await q(`select currency from audit.trial_balance where net_balance <> 0`),
    drift: await q(`select * from audit.balance_drift`),
    negative: await q(`select id from ledger.accounts where kind in ('user_wallet', 'merchant_wallet') and balance - held < 0`),
  };
}
export const HEALTHY = { stock: [], money: [], trial: [], drift: [], negative: [] };

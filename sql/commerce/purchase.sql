-- Purchases from the wallet: in one transaction, take the stock, write the
-- order and its lines at the prices of the moment, and post ONE entry:
-- buyer's wallet → merchant wallet (a shard) + platform fee → fees account.

-- Creates an order from items (stock taken) for p_buyer, or finds the one an
-- earlier identical request made (created = false); a different request with
-- the same key fails with IDEMPOTENCY_KEY_REUSED. The order row is written
-- first: it claims (buyer, key), so identical requests racing each other wait
-- on it and never both take stock. Its totals are filled in from the lines.
create or replace function commerce.create_order(
  p_buyer uuid,
  p_items app_public.order_item[],
  p_status app_public.order_status,
  p_method app_public.order_payment_method,
  p_idempotency_key text,
  out result app_public.orders,
  out created boolean
)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_request jsonb := commerce.items_request(p_items);
  v_first app_public.products;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  -- A product's merchant and currency never change, so no lock is needed here.
  select p.* into v_first from app_public.products p where p.id = p_items[1].product_id;
  if v_first.id is null then
    raise exception 'A product in this order does not exist or is not for sale' using errcode = 'PW512'; -- PRODUCT_NOT_AVAILABLE
  end if;
  insert into app_public.orders (buyer_id, merchant_id, currency, status, payment_method, total, fee, idempotency_key, request)
  values (p_buyer, v_first.merchant_id, v_first.currency, p_status, p_method, 0, 0, p_idempotency_key, v_request)
  on conflict (buyer_id, idempotency_key) do nothing
  returning * into result;
  created := result.id is not null;
  if not created then
    select o.* into result from app_public.orders o where o.buyer_id = p_buyer and o.idempotency_key = p_idempotency_key;
    if result.request <> v_request or result.payment_method <> p_method
       or (result.hold_id is null) <> (p_status <> 'reserved') then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return;
  end if;

  -- take_stock runs once; lines and totals come from its rows.
  with l as materialized (select * from commerce.take_stock(p_buyer, p_items)),
       ins as (insert into app_public.order_lines (order_id, product_id, quantity, unit_price, amount, fee)
               select result.id, l.product_id, l.quantity, l.unit_price, l.amount, l.fee from l)
  update app_public.orders o set total = t.total, fee = t.fee
    from (select sum(l.amount)::bigint as total, sum(l.fee)::bigint as fee from l) t
   where o.id = result.id
  returning o.* into result;
end;
$$;

-- Earlier shapes of these functions (work in progress on this branch).
drop function if exists commerce.pay_order(app_public.orders, uuid);

-- Posts an order's one entry: buyer's wallet → merchant wallet (this
-- session's shard) the total less the fee, and → fees account the fee.
create or replace function commerce.post_order_entry(p_order app_public.orders, p_entry_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_wallet uuid;
  v_legs ledger.leg[];
begin
  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = p_order.buyer_id and a.currency = p_order.currency;
  if v_wallet is null then
    raise exception 'You have no % wallet', p_order.currency using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  v_legs := array[row(v_wallet, -p_order.total),
                  row(commerce.merchant_account(p_order.merchant_id, p_order.currency), p_order.total - p_order.fee)]::ledger.leg[];
  if p_order.fee > 0 then
    v_legs := v_legs || row(ledger.system_account('fees', p_order.currency), p_order.fee)::ledger.leg;
  end if;
  perform ledger.post_entry('purchase', v_legs, 'Order ' || p_order.id,
                            jsonb_build_object('order_id', p_order.id, 'merchant_id', p_order.merchant_id, 'buyer_id', p_order.buyer_id),
                            'user:' || p_order.buyer_id || '/' || p_order.idempotency_key, null, p_entry_id);
end;
$$;

-- Pays an unpaid order (a confirmed reservation, a card checkout) from the
-- buyer's wallet and marks it paid.
create or replace function commerce.pay_order(p_order app_public.orders)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry_id uuid := uuidv7();
begin
  perform commerce.post_order_entry(p_order, v_entry_id);
  update app_public.orders o set status = 'paid', entry_id = v_entry_id, paid_at = now()
   where o.id = p_order.id
  returning * into p_order;
  return p_order;
end;
$$;

-- A wallet purchase's order, written paid in one statement from the stock
-- taken (the idempotency key is already claimed, so no other request races
-- it; the entry p_entry_id is posted right after, in the same transaction).
-- One insert per table and no updates: the hot path of every sale.
create or replace function commerce.insert_paid_order(p_buyer uuid, p_items app_public.order_item[], p_idempotency_key text, p_entry_id uuid)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  with l as materialized (select * from commerce.take_stock(p_buyer, p_items)),
       o as (insert into app_public.orders (buyer_id, merchant_id, currency, status, payment_method, total, fee,
                                            idempotency_key, request, entry_id, paid_at)
             select p_buyer, (array_agg(l.merchant_id))[1], (array_agg(l.currency))[1], 'paid', 'wallet', sum(l.amount), sum(l.fee),
                    p_idempotency_key, commerce.items_request(p_items), p_entry_id, now()
               from l
             on conflict (buyer_id, idempotency_key) do nothing
             returning *),
       ins as (insert into app_public.order_lines (order_id, product_id, quantity, unit_price, amount, fee)
               select o.id, l.product_id, l.quantity, l.unit_price, l.amount, l.fee from o cross join l)
  select o.* into v_order from o;
  if v_order.id is null then  -- the key named a reservation or card order
    raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
  end if;
  return v_order;
end;
$$;

-- The request as recorded for idempotency: items merged and sorted.
create or replace function commerce.items_request(p_items app_public.order_item[])
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(jsonb_agg(jsonb_build_array(i.product_id, i.quantity) order by i.product_id), '[]') from unnest(p_items) i;
$$;

-- The GraphQL mutation `purchase`.
create or replace function app_public.purchase(items app_public.order_item[], idempotency_key text)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_items app_public.order_item[];
  v_entry_id uuid := uuidv7();
  v_first uuid;
  v_order app_public.orders;
begin
  if v_caller is null then
    raise exception 'Sign in to buy' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  v_items := commerce.normalise_items(purchase.items);
  -- Like transfers: identical requests racing this one wait on the key and
  -- then get the first order; a different request with the key is refused.
  v_first := app_private.idempotency_claim('user:' || v_caller, purchase.idempotency_key, 'purchase',
                                           commerce.items_request(v_items), v_entry_id);
  if v_first is not null then
    -- The order carries the same key (and, being paid, the entry v_first).
    select o.* into v_order from app_public.orders o where o.buyer_id = v_caller and o.idempotency_key = purchase.idempotency_key;
    return v_order;
  end if;
  v_order := commerce.insert_paid_order(v_caller, v_items, purchase.idempotency_key, v_entry_id);
  perform commerce.post_order_entry(v_order, v_entry_id);
  return v_order;
end;
$$;
comment on function app_public.purchase(app_public.order_item[], text) is
  E'Buys `items` (products of one merchant, one currency) from your wallet of that currency, at today''s prices, in one step: '
  'the stock is taken, the order is created `paid`, and the money moves to the merchant (less the platform fee). '
  'OUT_OF_STOCK, INSUFFICIENT_FUNDS and the other refusals change nothing. Repeating a request with the same '
  '`idempotencyKey` returns the first order.';

revoke all on function commerce.create_order(uuid, app_public.order_item[], app_public.order_status, app_public.order_payment_method, text) from public;
revoke all on function commerce.post_order_entry(app_public.orders, uuid) from public;
revoke all on function commerce.pay_order(app_public.orders) from public;
revoke all on function commerce.insert_paid_order(uuid, app_public.order_item[], text, uuid) from public;
revoke all on function commerce.items_request(app_public.order_item[]) from public;
revoke all on function app_public.purchase(app_public.order_item[], text) from public;
grant execute on function app_public.purchase(app_public.order_item[], text) to app_user;

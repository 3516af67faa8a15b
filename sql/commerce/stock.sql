-- Stock: taken when an order is created (purchase, reservation or card
-- checkout) and given back when an unpaid order is released or a refund
-- restocks. Race safety: every writer locks the product rows it touches in
-- product id order (before any ledger account, which is locked after, in
-- account id order), then checks and decrements under the lock. So 64 buyers
-- of the last units queue on the row and exactly the units there are get sold;
-- a short order raises OUT_OF_STOCK and its transaction changes nothing.

-- Units of a product held by orders (reserved, awaiting payment, paid,
-- refunded) less units restocked by refunds.
create or replace function commerce.units_out(p_product_id uuid)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(sum(l.quantity - l.restocked_quantity), 0)::bigint
    from app_public.order_lines l
    join app_public.orders o on o.id = l.order_id
   where l.product_id = p_product_id
     and o.status in ('reserved', 'awaiting_payment', 'paid', 'refunded');
$$;

-- Items validated and merged per product (a product listed twice counts once
-- with the summed quantity). ORDER_ITEMS_INVALID for an empty or oversized
-- list, a missing product id or a quantity outside 1 to 10000.
create or replace function commerce.normalise_items(p_items app_public.order_item[])
returns app_public.order_item[]
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_items app_public.order_item[];
begin
  if p_items is null or cardinality(p_items) not between 1 and 50
     or exists (select from unnest(p_items) i where i.product_id is null or i.quantity is null or i.quantity not between 1 and 10000) then
    raise exception 'An order has 1 to 50 items, each a product id and a quantity from 1 to 10000'
      using errcode = 'PW520'; -- ORDER_ITEMS_INVALID
  end if;
  select array_agg(row(i.product_id, i.q)::app_public.order_item order by i.product_id) into v_items
    from (select u.product_id, sum(u.quantity) as q from unnest(p_items) u group by u.product_id) i;
  if exists (select from unnest(v_items) i where i.quantity > 10000) then
    raise exception 'At most 10000 units of one product per order' using errcode = 'PW520'; -- ORDER_ITEMS_INVALID
  end if;
  return v_items;
end;
$$;

-- The priced lines of an order, with its stock taken. Items must be active
-- products of one active merchant in one currency, not the buyer's own.
create or replace function commerce.take_stock(p_buyer uuid, p_items app_public.order_item[])
returns table (product_id uuid, quantity int, unit_price bigint, amount bigint, fee bigint, merchant_id uuid, currency char(3))
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_bps bigint := coalesce(commerce.setting('platform_fee_bps'), 0);
  v_ids uuid[] := array(select i.product_id from unnest(p_items) i);
  v_check record;
begin
  -- Lock in product id order (p_items is sorted by normalise_items).
  perform from app_public.products p where p.id = any (v_ids) order by p.id for update;
  for attempt in 1..2 loop
    select count(*) as found, count(distinct p.merchant_id) as merchants, count(distinct p.currency) as currencies,
           bool_or(p.merchant_id = p_buyer) as own, (array_agg(p.id) filter (where p.stock < i.quantity))[1] as short
      into v_check
      from unnest(p_items) i
      join app_public.products p on p.id = i.product_id and p.active
      join app_public.merchants m on m.id = p.merchant_id and m.status = 'active';
    exit when v_check.short is null or attempt = 2;
    -- Lazy expiry: units of these products in overdue reservations come back
    -- before we decide the order cannot be filled (the worker does the rest).
    -- It skips locked orders, so holding the product rows here cannot deadlock.
    exit when commerce.expire_reservations(100, v_ids) = 0;
  end loop;
  if v_check.found <> cardinality(p_items) then
    raise exception 'A product in this order does not exist or is not for sale' using errcode = 'PW512'; -- PRODUCT_NOT_AVAILABLE
  end if;
  if v_check.merchants <> 1 or v_check.currencies <> 1 then
    raise exception 'An order is for products of one merchant in one currency' using errcode = 'PW522'; -- ORDER_MIXED
  end if;
  if v_check.own then
    raise exception 'You cannot buy your own products' using errcode = 'PW523'; -- PURCHASE_FROM_SELF
  end if;
  if v_check.short is not null then
    raise exception 'Not enough stock of product %', v_check.short using errcode = 'PW521'; -- OUT_OF_STOCK
  end if;

  return query
    with taken as (
      update app_public.products p set stock = p.stock - i.quantity
        from unnest(p_items) i
       where p.id = i.product_id and p.stock is not null
    )
    select p.id, i.quantity, p.price, p.price * i.quantity, (p.price * i.quantity * v_bps) / 10000, p.merchant_id, p.currency
      from unnest(p_items) i join app_public.products p on p.id = i.product_id
     order by p.id;
end;
$$;

-- Gives back p_quantities[product] units (all of the order's remaining units
-- when null) to the products of p_order_id, locking them in id order.
create or replace function commerce.return_stock(p_order_id uuid, p_items app_public.order_item[] default null)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform from app_public.products p
   where p.id in (select l.product_id from app_public.order_lines l where l.order_id = p_order_id)
   order by p.id for update;
  update app_public.products p
     set stock = p.stock + r.quantity
    from (select l.product_id, coalesce(i.quantity, l.quantity - l.restocked_quantity) as quantity
            from app_public.order_lines l
            left join unnest(p_items) i on i.product_id = l.product_id
           where l.order_id = p_order_id and (p_items is null or i.product_id is not null)) r
   where p.id = r.product_id and p.stock is not null and r.quantity > 0;
end;
$$;

revoke all on function commerce.units_out(uuid) from public;
revoke all on function commerce.normalise_items(app_public.order_item[]) from public;
revoke all on function commerce.take_stock(uuid, app_public.order_item[]) from public;
revoke all on function commerce.return_stock(uuid, app_public.order_item[]) from public;

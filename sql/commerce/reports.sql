-- Orders and sales reports. The public views run with the caller's rights
-- (security_invoker), so the RLS of orders and order_lines applies: a
-- merchant's report shows only their own sales. Sales are counted on the day
-- (UTC) the order was paid; refunds are counted against that same day.

create or replace view app_public.merchant_daily_sales with (security_invoker = true) as
  select o.merchant_id,
         (o.paid_at at time zone 'UTC')::date as day,
         o.currency,
         count(distinct o.id)::int as orders,
         sum(l.quantity)::bigint as units,
         sum(l.amount)::bigint as gross,
         sum(l.fee)::bigint as fees,
         sum(l.refunded_quantity * l.unit_price)::bigint as refunds,
         (sum(l.amount) - sum(l.fee) - sum(l.refunded_quantity * l.unit_price))::bigint as net
    from app_public.orders o
    join app_public.order_lines l on l.order_id = o.id
   where o.status in ('paid', 'refunded') and o.merchant_id = app_public.current_user_id()
   group by o.merchant_id, (o.paid_at at time zone 'UTC')::date, o.currency;
comment on view app_public.merchant_daily_sales is
  E'@behavior +connection -node\nYour sales per day (UTC) and currency, as a merchant: orders, units, gross, platform fees, refunds and net (gross − fees − refunds), in minor units.';

create or replace view app_public.merchant_product_sales with (security_invoker = true) as
  select o.merchant_id,
         l.product_id,
         p.name as product_name,
         o.currency,
         count(*)::int as orders,
         sum(l.quantity)::bigint as units,
         sum(l.amount)::bigint as gross,
         sum(l.fee)::bigint as fees,
         sum(l.refunded_quantity * l.unit_price)::bigint as refunds,
         (sum(l.amount) - sum(l.fee) - sum(l.refunded_quantity * l.unit_price))::bigint as net
    from app_public.orders o
    join app_public.order_lines l on l.order_id = o.id
    join app_public.products p on p.id = l.product_id
   where o.status in ('paid', 'refunded') and o.merchant_id = app_public.current_user_id()
   group by o.merchant_id, l.product_id, p.name, o.currency;
comment on view app_public.merchant_product_sales is
  E'@behavior +connection -node\nYour sales per product, as a merchant: orders, units, gross, platform fees, refunds and net, in minor units.';

-- "My orders" as a buyer and as a merchant, and "my products". SECURITY
-- DEFINER because a row type result reads every column (some are not granted);
-- each filters on the caller itself.
create or replace function app_public.my_orders()
returns setof app_public.orders
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select o.* from app_public.orders o where o.buyer_id = app_public.current_user_id() order by o.created_at desc, o.id;
$$;
comment on function app_public.my_orders() is 'Your orders as a buyer, newest first.';

create or replace function app_public.merchant_orders()
returns setof app_public.orders
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select o.* from app_public.orders o where o.merchant_id = app_public.current_user_id() order by o.created_at desc, o.id;
$$;
comment on function app_public.merchant_orders() is 'Orders of your products, as a merchant, newest first.';

create or replace function app_public.my_products()
returns setof app_public.products
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select p.* from app_public.products p where p.merchant_id = app_public.current_user_id() order by p.created_at, p.id;
$$;
comment on function app_public.my_products() is 'Your products as a merchant, active or not.';

-- For DBAs and auditors (app_auditor): each of these is empty on a healthy system.

-- Units sold + units left = units ever put on sale, per limited product.
create or replace view audit.commerce_stock_mismatches as
  select p.id as product_id, p.merchant_id, p.name, p.stock_created, p.stock as stock_left,
         commerce.units_out(p.id) as units_out
    from app_public.products p
   where p.stock is not null and p.stock_created <> p.stock + commerce.units_out(p.id);

-- Every paid order's money is in the merchant's wallet exactly once: one
-- purchase entry names the order, it debits the buyer the total and credits
-- the merchant total − fee and the fees account the fee; refunds add up.
create or replace view audit.commerce_order_money_mismatches as
  -- Set-wise (one pass over purchase entries and over the orders' postings),
  -- not a subquery per order: it must stay cheap with millions of orders.
  with purchase_entries as (
    select (e.metadata->>'order_id')::uuid as order_id, count(*) as n
      from ledger.entries e
     where e.kind::text = 'purchase'
     group by 1
  ),
  legs as (
    select o.id as order_id,
           coalesce(sum(p.amount) filter (where a.owner_id = o.merchant_id and a.kind::text = 'merchant_wallet'), 0) as to_merchant,
           coalesce(sum(p.amount) filter (where a.owner_id = o.buyer_id and a.kind::text = 'user_wallet'), 0) as from_buyer
      from app_public.orders o
      join ledger.postings p on p.entry_id = o.entry_id
      join ledger.accounts a on a.id = p.account_id
     group by o.id
  ),
  refunds as (
    select r.order_id, sum(r.amount) as amount from app_public.order_refunds r group by r.order_id
  )
  select o.id, o.status, o.total, o.fee, o.refunded,
         coalesce(pe.n, 0) as purchase_entries, coalesce(l.to_merchant, 0) as to_merchant,
         coalesce(l.from_buyer, 0) as from_buyer, coalesce(r.amount, 0) as refunds
    from app_public.orders o
    left join purchase_entries pe on pe.order_id = o.id
    left join legs l on l.order_id = o.id
    left join refunds r on r.order_id = o.id
   where (o.status in ('paid', 'refunded')
          and (coalesce(pe.n, 0) <> 1 or coalesce(l.to_merchant, 0) <> o.total - o.fee or coalesce(l.from_buyer, 0) <> -o.total))
      or (o.status not in ('paid', 'refunded') and coalesce(pe.n, 0) <> 0)
      or coalesce(r.amount, 0) <> o.refunded;

-- Reservations past their time still holding stock (the worker is behind if
-- this stays non-empty for more than a few minutes).
create or replace view audit.commerce_overdue_reservations as
  select o.id, o.buyer_id, o.merchant_id, o.total, o.expires_at, now() - o.expires_at as overdue_by
    from app_public.orders o
   where o.status = 'reserved' and o.expires_at <= now();

-- Each merchant's wallet per currency, summed over its shards.
create or replace view audit.commerce_merchant_balances as
  select m.id as merchant_id, m.display_name, m.status, a.currency, count(*) as shards,
         sum(a.balance) as balance, sum(a.held) as held
    from app_public.merchants m
    join ledger.accounts a on a.owner_id = m.id and a.kind::text = 'merchant_wallet'
   group by m.id, m.display_name, m.status, a.currency;

-- Orders and the settings, for auditors (who read the audit schema only).
create or replace view audit.commerce_orders as
  select o.id, o.buyer_id, o.merchant_id, m.display_name as merchant_name, o.currency, o.status, o.payment_method,
         o.total, o.fee, o.refunded, o.entry_id, o.deposit_id, o.hold_id, o.expires_at, o.created_at, o.paid_at, o.closed_at
    from app_public.orders o join app_public.merchants m on m.id = o.merchant_id;
create or replace view audit.commerce_settings as
  select s.name, commerce.setting(s.name) as value, s.value as stored_value, s.note from app_private.commerce_settings s;

revoke all on audit.commerce_orders, audit.commerce_settings from public;
grant select on audit.commerce_orders, audit.commerce_settings to app_auditor;
revoke all on audit.commerce_stock_mismatches, audit.commerce_order_money_mismatches, audit.commerce_overdue_reservations,
              audit.commerce_merchant_balances from public;
grant select on audit.commerce_stock_mismatches, audit.commerce_order_money_mismatches, audit.commerce_overdue_reservations,
                audit.commerce_merchant_balances to app_auditor;
revoke all on app_public.merchant_daily_sales, app_public.merchant_product_sales from public, app_anonymous;
grant select on app_public.merchant_daily_sales, app_public.merchant_product_sales to app_user;
revoke all on function app_public.my_orders() from public;
revoke all on function app_public.merchant_orders() from public;
revoke all on function app_public.my_products() from public;
grant execute on function app_public.my_orders() to app_user;
grant execute on function app_public.merchant_orders() to app_user;
grant execute on function app_public.my_products() to app_user;

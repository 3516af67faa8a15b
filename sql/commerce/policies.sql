-- Who sees what of commerce. Rows are written only by the SECURITY DEFINER
-- functions (no INSERT/UPDATE/DELETE is granted). Anyone, anonymous too, sees
-- active merchants and their active products (the catalogue); a merchant also
-- sees their own inactive products; an order (with its lines and refunds) is
-- seen by its buyer and its merchant only.

alter table app_public.merchants enable row level security;
drop policy if exists select_visible on app_public.merchants;
create policy select_visible on app_public.merchants
  for select to app_anonymous, app_user
  using (status = 'active' or id = (select app_public.current_user_id()));

alter table app_public.products enable row level security;
drop policy if exists select_catalogue on app_public.products;
create policy select_catalogue on app_public.products
  for select to app_anonymous, app_user
  using ((active and exists (select from app_public.merchants m where m.id = merchant_id and m.status = 'active'))
         or merchant_id = (select app_public.current_user_id()));

alter table app_public.orders enable row level security;
drop policy if exists select_party on app_public.orders;
create policy select_party on app_public.orders
  for select to app_user
  using (buyer_id = (select app_public.current_user_id()) or merchant_id = (select app_public.current_user_id()));

alter table app_public.order_lines enable row level security;
drop policy if exists select_party on app_public.order_lines;
create policy select_party on app_public.order_lines
  for select to app_user
  using (exists (select from app_public.orders o where o.id = order_id));  -- orders' own RLS decides

alter table app_public.order_refunds enable row level security;
drop policy if exists select_party on app_public.order_refunds;
create policy select_party on app_public.order_refunds
  for select to app_user
  using (exists (select from app_public.orders o where o.id = order_id));

revoke all on app_public.merchants, app_public.products, app_public.orders, app_public.order_lines, app_public.order_refunds
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
grant select (id, display_name, status, created_at) on app_public.merchants to app_anonymous, app_user;
grant select (id, merchant_id, name, description, price, currency, stock, active, created_at, updated_at)
  on app_public.products to app_anonymous, app_user;
grant select (id, buyer_id, merchant_id, currency, status, payment_method, total, fee, refunded, idempotency_key,
              deposit_id, entry_id, expires_at, created_at, paid_at, closed_at)
  on app_public.orders to app_user;
grant select (order_id, product_id, quantity, unit_price, amount, fee, refunded_quantity, restocked_quantity)
  on app_public.order_lines to app_user;
grant select (id, order_id, amount, restock, reason, created_at) on app_public.order_refunds to app_user;

comment on table app_public.merchants is E'@behavior -insert -update -delete\nA seller (becomeMerchant). Suspended merchants sell nothing.';
comment on table app_public.products is
  E'@behavior -insert -update -delete\nSomething a merchant sells: price in minor units of `currency`; `stock` units left (null: unlimited).';
comment on table app_public.orders is
  E'@behavior -insert -update -delete\n@foreignKey (merchant_id) references app_public.merchants (id)\nA purchase of one merchant''s products by one buyer. status: reserved (reserveItems, until expiresAt), '
  'awaiting_payment (card checkout under way), paid, refunded (fully), expired, cancelled or failed. Amounts in minor units.';
comment on column app_public.orders.fee is 'The platform fee kept from the merchant''s share.';
comment on column app_public.orders.refunded is 'Minor units refunded to the buyer so far.';
comment on column app_public.orders.deposit_id is 'For card purchases: the deposit that collects the money (its checkoutUrl is the checkout page).';
comment on column app_public.orders.entry_id is 'The ledger entry that paid the order.';
comment on constraint orders_idempotency on app_public.orders is '@behavior -single';
comment on table app_public.order_lines is
  E'@behavior -insert -update -delete\nOne product of an order, at the price of the moment it was ordered.';
comment on table app_public.order_refunds is E'@behavior -insert -update -delete\nMoney a merchant gave back for an order (refundOrder).';
comment on constraint order_refunds_idempotency on app_public.order_refunds is '@behavior -single';
comment on constraint order_refunds_entry_id_key on app_public.order_refunds is '@behavior -single';

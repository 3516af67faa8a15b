-- Products: the owner merchant creates, changes, restocks and deactivates
-- them (SECURITY DEFINER functions that check the owner; no table writes are
-- granted). Anyone, anonymous included, reads the active catalogue (RLS in
-- policies.sql). Prices are minor units; stock null means unlimited.

create or replace function commerce.assert_product_fields(p_name text, p_description text, p_price bigint, p_stock int)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_name is not null and length(btrim(p_name)) not between 1 and 200 then
    raise exception 'A product name has 1 to 200 characters' using errcode = 'PW510'; -- PRODUCT_INVALID
  end if;
  if length(p_description) > 2000 then
    raise exception 'A product description has at most 2000 characters' using errcode = 'PW510'; -- PRODUCT_INVALID
  end if;
  if p_price is not null and p_price not between 1 and 1000000000000000 then
    raise exception 'A price is a whole number of minor units from 1 to 10^15' using errcode = 'PW510'; -- PRODUCT_INVALID
  end if;
  if p_stock < 0 or p_stock > 100000000 then
    raise exception 'Stock is 0 to 100000000 units (null: unlimited)' using errcode = 'PW510'; -- PRODUCT_INVALID
  end if;
end;
$$;

-- The caller's product, locked; someone else's is reported as missing.
create or replace function commerce.lock_own_product(p_product_id uuid)
returns app_public.products
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product app_public.products;
begin
  select p.* into v_product from app_public.products p
   where p.id = p_product_id and p.merchant_id = commerce.assert_merchant()
     for update;
  if v_product.id is null then
    raise exception 'Product % not found', p_product_id using errcode = 'PW511'; -- PRODUCT_NOT_FOUND
  end if;
  return v_product;
end;
$$;

create or replace function app_public.create_product(name text, price bigint, currency text, stock int default null, description text default null)
returns app_public.products
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_merchant uuid := commerce.assert_merchant();
  v_product app_public.products;
begin
  perform commerce.assert_product_fields(create_product.name, create_product.description, create_product.price, create_product.stock);
  if create_product.name is null or create_product.price is null then
    raise exception 'A product needs a name and a price' using errcode = 'PW510'; -- PRODUCT_INVALID
  end if;
  perform ledger.assert_currency(create_product.currency);
  insert into app_public.products (merchant_id, name, description, price, currency, stock, stock_created)
  values (v_merchant, btrim(create_product.name), create_product.description, create_product.price, create_product.currency,
          create_product.stock, coalesce(create_product.stock, 0))
  returning * into v_product;
  return v_product;
end;
$$;
comment on function app_public.create_product(text, bigint, text, int, text) is
  'Lists a product (merchants only): price in minor units of `currency`, `stock` units for sale (omit for unlimited).';

-- Changes name, description, price or active (a null argument keeps the
-- value). A new price applies to later orders; orders keep theirs.
create or replace function app_public.update_product(product_id uuid, name text default null, description text default null,
                                                     price bigint default null, active boolean default null)
returns app_public.products
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product app_public.products := commerce.lock_own_product(update_product.product_id);
begin
  perform commerce.assert_product_fields(update_product.name, update_product.description, update_product.price, null);
  update app_public.products p
     set name = coalesce(btrim(update_product.name), p.name),
         description = coalesce(update_product.description, p.description),
         price = coalesce(update_product.price, p.price),
         active = coalesce(update_product.active, p.active),
         updated_at = now()
   where p.id = v_product.id
  returning * into v_product;
  return v_product;
end;
$$;
comment on function app_public.update_product(uuid, text, text, bigint, boolean) is
  'Changes your product (omitted fields stay); `active: false` takes it off sale. Existing orders keep their prices.';

-- Sets the units left for sale (null: unlimited). stock_created follows, so
-- that units sold + units left = units ever created (audit.commerce_stock_mismatches).
create or replace function app_public.set_product_stock(product_id uuid, stock int)
returns app_public.products
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product app_public.products := commerce.lock_own_product(set_product_stock.product_id);
begin
  perform commerce.assert_product_fields(null, null, null, set_product_stock.stock);
  update app_public.products p
     set stock = set_product_stock.stock,
         stock_created = case
           when set_product_stock.stock is null then p.stock_created
           when p.stock is null then set_product_stock.stock + commerce.units_out(p.id)
           else p.stock_created + (set_product_stock.stock - p.stock) end,
         updated_at = now()
   where p.id = v_product.id
  returning * into v_product;
  return v_product;
end;
$$;
comment on function app_public.set_product_stock(uuid, int) is 'Sets how many units of your product are left for sale (null: unlimited).';

revoke all on function commerce.assert_product_fields(text, text, bigint, int) from public;
revoke all on function commerce.lock_own_product(uuid) from public;
revoke all on function app_public.create_product(text, bigint, text, int, text) from public;
revoke all on function app_public.update_product(uuid, text, text, bigint, boolean) from public;
revoke all on function app_public.set_product_stock(uuid, int) from public;
grant execute on function app_public.create_product(text, bigint, text, int, text) to app_user;
grant execute on function app_public.update_product(uuid, text, text, bigint, boolean) to app_user;
grant execute on function app_public.set_product_stock(uuid, int) to app_user;

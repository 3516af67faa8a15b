-- ==== commerce ====
-- Merchants, products with stock, orders (wallet, reservation, card), refunds.
-- Functions, views and policies live in sql/commerce/ (included at the end).

-- A merchant's wallet: a ledger account kind of its own, one logical account
-- per (merchant, currency) split into shards like the system accounts, so a
-- popular merchant's credits do not queue on one row. The new value cannot be
-- used in this transaction; only function bodies (plpgsql) reference it.
alter type ledger.account_kind add value if not exists 'merchant_wallet';

-- Entries of the new kinds show as such in wallet histories.
alter type ledger.entry_kind add value if not exists 'purchase';
alter type ledger.entry_kind add value if not exists 'refund';

create schema if not exists commerce;
revoke all on schema commerce from public;

-- Owned accounts are user wallets (one row) and merchant wallets (shards);
-- neither may go negative. kind::text keeps the new enum value out of this DDL.
alter table ledger.accounts drop constraint if exists accounts_owner_iff_wallet;
alter table ledger.accounts drop constraint if exists accounts_owner_iff_owned_kind;
alter table ledger.accounts add constraint accounts_owner_iff_owned_kind
  check ((owner_id is not null) = (kind::text in ('user_wallet', 'merchant_wallet')));
alter table ledger.accounts drop constraint if exists accounts_merchant_wallets_never_negative;
alter table ledger.accounts add constraint accounts_merchant_wallets_never_negative
  check (kind::text <> 'merchant_wallet' or not allow_negative);
-- System shards are the ownerless accounts other than event accounts (one set
-- of shards per event, sql/voting); merchant shards are per owner.
drop index if exists ledger.accounts_system_shard;
create unique index if not exists accounts_system_shard on ledger.accounts (kind, currency, shard)
  where owner_id is null and kind <> 'event_account';
create unique index if not exists accounts_merchant_shard on ledger.accounts (owner_id, currency, shard)
  where owner_id is not null and kind <> 'user_wallet';

do $$ begin
  create type app_public.merchant_status as enum ('active', 'suspended');
exception when duplicate_object then null; end $$;
do $$ begin
  create type app_public.order_status as enum ('reserved', 'awaiting_payment', 'paid', 'refunded', 'expired', 'cancelled', 'failed');
exception when duplicate_object then null; end $$;
do $$ begin
  create type app_public.order_payment_method as enum ('wallet', 'card');
exception when duplicate_object then null; end $$;
-- One line of purchase/reserveItems/purchaseByCard/refundOrder input.
do $$ begin
  create type app_public.order_item as (product_id uuid, quantity int);
exception when duplicate_object then null; end $$;

create table if not exists app_public.merchants (
  id                uuid primary key references app_public.users on delete restrict,
  display_name      text not null check (length(btrim(display_name)) between 1 and 100),
  status            app_public.merchant_status not null default 'active',
  suspension_reason text check (length(suspension_reason) <= 500),
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now()
);

create table if not exists app_public.products (
  id            uuid primary key default uuidv7(),
  merchant_id   uuid not null references app_public.merchants,
  name          text not null check (length(btrim(name)) between 1 and 200),
  description   text check (length(description) <= 2000),
  price         bigint not null check (price between 1 and 1000000000000000),
  currency      char(3) not null references ledger.currencies,
  stock         int check (stock >= 0),            -- units left to sell; null = unlimited
  stock_created bigint not null default 0,         -- every unit ever put on sale (audit)
  active        boolean not null default true,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);
create index if not exists products_merchant_idx on app_public.products (merchant_id, created_at);
create index if not exists products_active_idx on app_public.products (created_at) where active;

-- An order is one buyer, one merchant, one currency. Its lines keep the price
-- of the moment; its money moves in one entry (entry_id). merchant_id and
-- currency are copied from the products (whose foreign keys vouch for them)
-- and carry no foreign key of their own: every sale would take a KEY SHARE
-- lock on the merchant's row and on the currency's row, and thousands of
-- concurrent sharers of one row become a multixact hot spot (ledger.postings
-- has no currency foreign key for the same reason).
create table if not exists app_public.orders (
  id              uuid primary key default uuidv7(),
  buyer_id        uuid not null references app_public.users,
  merchant_id     uuid not null,
  currency        char(3) not null,
  status          app_public.order_status not null,
  payment_method  app_public.order_payment_method not null,
  total           bigint not null check (total >= 0),  -- 0 only while the lines are written
  fee             bigint not null check (fee >= 0 and fee <= total),
  refunded        bigint not null default 0 check (refunded >= 0 and refunded <= total),
  idempotency_key text not null check (length(idempotency_key) between 1 and 200),
  request         jsonb not null,                  -- what was asked, to recognise a repeat
  hold_id         uuid references ledger.holds,
  deposit_id      uuid references app_public.deposits,
  entry_id        uuid references ledger.entries deferrable initially deferred,
  expires_at      timestamptz,
  created_at      timestamptz not null default now(),
  paid_at         timestamptz,
  closed_at       timestamptz,
  constraint orders_idempotency unique (buyer_id, idempotency_key),
  constraint orders_paid_have_entry check (status not in ('paid', 'refunded') or entry_id is not null)
);
-- Few indexes: every sale inserts an order. A buyer's orders are found
-- through orders_idempotency (buyer_id first); deposit_id only for card orders.
create index if not exists orders_merchant_idx on app_public.orders (merchant_id, created_at);
create unique index if not exists orders_deposit_idx on app_public.orders (deposit_id) where deposit_id is not null;
create index if not exists orders_reserved_expiry_idx on app_public.orders (expires_at) where status = 'reserved';

create table if not exists app_public.order_lines (
  order_id           uuid not null references app_public.orders,
  product_id         uuid not null references app_public.products,
  quantity           int not null check (quantity between 1 and 10000),
  unit_price         bigint not null check (unit_price > 0),
  amount             bigint not null check (amount > 0),
  fee                bigint not null check (fee >= 0),
  refunded_quantity  int not null default 0,
  restocked_quantity int not null default 0,
  primary key (order_id, product_id),
  constraint order_lines_refunds check (refunded_quantity between 0 and quantity and restocked_quantity between 0 and refunded_quantity)
);
create index if not exists order_lines_product_idx on app_public.order_lines (product_id);

create table if not exists app_public.order_refunds (
  id              uuid primary key default uuidv7(),
  order_id        uuid not null references app_public.orders,
  amount          bigint not null check (amount > 0),
  items           jsonb not null,
  restock         boolean not null,
  reason          text check (length(reason) <= 500),
  idempotency_key text not null check (length(idempotency_key) between 1 and 200),
  entry_id        uuid not null unique references ledger.entries deferrable initially deferred,
  created_at      timestamptz not null default now(),
  constraint order_refunds_idempotency unique (order_id, idempotency_key)
);

-- Commerce settings a DBA (or admin) changes with an UPDATE; the session
-- setting pgwallet.commerce_<name> overrides a row (tests, benchmarks).
create table if not exists app_private.commerce_settings (
  name  text primary key,
  value bigint not null check (value >= 0),
  note  text
);
insert into app_private.commerce_settings (name, value, note) values
  ('platform_fee_bps', 200, 'Platform fee in basis points of each order line (200 = 2%), credited to the fees account'),
  ('reservation_seconds', 600, 'How long reserveItems holds stock and money'),
  ('merchant_shards', 16, 'Shards per merchant wallet (1 to 256)')
on conflict (name) do nothing;

--!include ledger/accounts.sql
--!include ledger/guards.sql
--!include commerce/settings.sql
--!include commerce/merchants.sql
--!include commerce/merchant_wallet.sql
--!include commerce/products.sql
--!include commerce/stock.sql
--!include commerce/purchase.sql
--!include commerce/reservations.sql
--!include commerce/card.sql
--!include commerce/refunds.sql
--!include commerce/reports.sql
--!include commerce/policies.sql
-- The worker may run the reservation-expiry task (and this re-asserts SECURITY
-- DEFINER on task functions whose files were included above).
--!include worker/grants.sql

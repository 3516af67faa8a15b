--! Previous: sha1:788c0ae403825224553c4e7fc6b4abd21f942dd7
--! Hash: sha1:01b21bc715e1affa8ee7925f705982302b27610e
--! Message: commerce

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

--! Included ledger/accounts.sql
-- Opening accounts: user wallets (one per user and currency) and the system
-- accounts every currency needs, created on first use.

create or replace function ledger.assert_currency(p_currency text)
returns char(3)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_currency is null or not exists (select from ledger.currencies c where c.code = p_currency) then
    raise exception 'Unsupported currency %; use an ISO 4217 code such as ZAR', coalesce(quote_literal(p_currency), 'null')
      using errcode = 'PW105'; -- CURRENCY_INVALID
  end if;
  return p_currency;
end;
$$;

-- Returns the user's wallet in that currency, opening it if needed.
create or replace function ledger.open_wallet(p_owner_id uuid, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  perform ledger.assert_currency(p_currency);
  insert into ledger.accounts (kind, owner_id, currency)
  values ('user_wallet', p_owner_id, p_currency)
  on conflict (owner_id, currency) where kind = 'user_wallet' do nothing
  returning id into v_id;
  if v_id is null then
    select a.id into v_id from ledger.accounts a
     where a.kind = 'user_wallet' and a.owner_id = p_owner_id and a.currency = p_currency;
  end if;
  return v_id;
end;
$$;

-- How many shards each system account has: 16, or the session setting
-- ledger.system_shards (1 to 256; the benchmark sets 1 to show the difference).
create or replace function ledger.system_shards()
returns int
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select least(greatest(coalesce(nullif(current_setting('ledger.system_shards', true), '')::int, 16), 1), 256);
$$;

-- The shard of a system account this session posts to. Every deposit credits
-- the clearing account: with one row, every deposit in the country would
-- queue on one row lock. Spreading by backend gives concurrent transactions
-- different rows (a pool's connections are distinct backends) while one
-- session keeps to one shard. The logical balance is the sum over shards
-- (audit.system_balances); each shard still obeys every invariant.
create or replace function ledger.system_account(p_kind ledger.account_kind, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard smallint := pg_backend_pid() % ledger.system_shards();
  v_id uuid;
begin
  if p_kind in ('user_wallet', 'merchant_wallet') then  -- owned kinds (commerce.merchant_account opens merchant shards)
    raise exception 'system_account: % is not a system account kind', p_kind using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  select a.id into v_id from ledger.accounts a
   where a.kind = p_kind and a.currency = p_currency and a.shard = v_shard;
  if v_id is null then
    perform ledger.assert_currency(p_currency);
    insert into ledger.accounts (kind, currency, shard) values (p_kind, p_currency, v_shard)
    -- No conflict target: the unique index on (kind, currency, shard) covers
    -- only the system kinds (event accounts have shards of their own).
    on conflict do nothing
    returning id into v_id;
    if v_id is null then  -- another session created it first
      select a.id into v_id from ledger.accounts a
       where a.kind = p_kind and a.currency = p_currency and a.shard = v_shard;
    end if;
  end if;
  return v_id;
end;
$$;

-- Every new user gets a ZAR wallet (a trigger, so every way of creating a user
-- is covered, not just register()).
create or replace function ledger.tg_users_open_default_wallet()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform ledger.open_wallet(new.id, 'ZAR');
  return null;
end;
$$;
create or replace trigger _500_open_default_wallet after insert on app_public.users
  for each row execute function ledger.tg_users_open_default_wallet();

-- Freezing stops debits (postings and new holds); credits still arrive.
create or replace function ledger.set_frozen(p_account_id uuid, p_frozen boolean)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update ledger.accounts set frozen = p_frozen where id = p_account_id;
  if not found then
    raise exception 'Account % does not exist', p_account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
end;
$$;

revoke all on function ledger.assert_currency(text) from public;
revoke all on function ledger.open_wallet(uuid, text) from public;
revoke all on function ledger.system_shards() from public;
revoke all on function ledger.system_account(ledger.account_kind, text) from public;
revoke all on function ledger.tg_users_open_default_wallet() from public;
revoke all on function ledger.set_frozen(uuid, boolean) from public;
--! EndIncluded ledger/accounts.sql
--! Included ledger/guards.sql
-- The ledger's invariants, enforced by triggers so that they hold for every
-- writer that is not a superuser: the API's roles, the worker, and the owner
-- typing SQL by hand. The money functions (post_entry.sql, holds.sql) get no
-- special treatment: they pass these checks because they do the right thing.
-- (Dropping or disabling a trigger is DDL; see docs/runbook-ledger.md.)

-- Entries and postings are history: never updated, never deleted. Corrections
-- are new entries (reverse_entry.sql).
create or replace function ledger.tg_append_only()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name in ('entries', 'postings') then
    raise exception 'ledger.% is append-only: % is not allowed; post a reversing entry instead', tg_table_name, lower(tg_op)
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  raise exception 'ledger.% rows are never removed (% refused)', tg_table_name, lower(tg_op)
    using errcode = 'PW121'; -- LEDGER_IMMUTABLE
end;
$$;

create or replace trigger _000_append_only before update or delete on ledger.entries
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_append_only_truncate before truncate on ledger.entries
  for each statement execute function ledger.tg_append_only();
create or replace trigger _000_append_only before update or delete on ledger.postings
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_append_only_truncate before truncate on ledger.postings
  for each statement execute function ledger.tg_append_only();
-- Accounts and holds are updated in place, but never removed.
create or replace trigger _000_no_delete before delete on ledger.accounts
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_no_truncate before truncate on ledger.accounts
  for each statement execute function ledger.tg_append_only();
create or replace trigger _000_no_delete before delete on ledger.holds
  for each row execute function ledger.tg_append_only();
create or replace trigger _000_no_truncate before truncate on ledger.holds
  for each statement execute function ledger.tg_append_only();

-- New entries are stamped with the writing transaction and the real time,
-- whatever the writer supplied.
create or replace function ledger.tg_entries_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  new.txid := pg_current_xact_id();
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_stamp before insert on ledger.entries
  for each row execute function ledger.tg_entries_before_insert();

-- At commit, every entry written by the transaction must have at least two
-- postings and sum to zero in each currency. Deferred so that the entry can
-- be written before its postings; postings cannot be added to it later
-- (tg_postings_before_insert checks txid), so checking once is enough.
create or replace function ledger.tg_entries_check_balanced()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_legs bigint;
  v_unbalanced bigint;
begin
  select coalesce(sum(legs), 0), count(*) filter (where total <> 0)
    into v_legs, v_unbalanced
    from (select count(*) as legs, sum(p.amount) as total
            from ledger.postings p
           where p.entry_id = new.id
           group by p.currency) per_currency;
  if v_legs < 2 or v_unbalanced > 0 then
    raise exception 'Entry % does not balance: it needs at least two postings summing to zero in each currency', new.id
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
  return null;
end;
$$;
drop trigger if exists _900_balanced on ledger.entries;
create constraint trigger _900_balanced after insert on ledger.entries
  deferrable initially deferred
  for each row execute function ledger.tg_entries_check_balanced();

-- Accounts: identity never changes; balance and version change only together
-- with the posting that explains them, and held only together with the holds
-- that explain it. Available balance of a wallet never goes below zero.
create or replace function ledger.tg_accounts_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Accounts start empty; money arrives only through postings.
  new.balance := 0;
  new.held := 0;
  new.version := 0;
  -- Owned accounts (user and merchant wallets) never go below zero.
  new.allow_negative := new.kind not in ('user_wallet', 'merchant_wallet');
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_start_empty before insert on ledger.accounts
  for each row execute function ledger.tg_accounts_before_insert();

create or replace function ledger.tg_accounts_before_update()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if (new.id, new.kind, new.owner_id, new.currency, new.shard, new.allow_negative, new.created_at)
     is distinct from (old.id, old.kind, old.owner_id, old.currency, old.shard, old.allow_negative, old.created_at) then
    raise exception 'An account''s identity (id, kind, owner, currency, shard, sign, creation time) cannot change'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;

  -- Only the posting trigger moves a balance, one posting at a time: the
  -- posting with the new sequence number must exist and explain the change.
  if new.balance <> old.balance or new.version <> old.version then
    if new.version <> old.version + 1 or not exists (
         select from ledger.postings p
          where p.account_id = new.id and p.sequence = new.version
            and p.balance_after = new.balance and p.amount = new.balance - old.balance) then
      raise exception 'The balance of account % can change only by posting an entry', new.id
        using errcode = 'PW122'; -- BALANCE_DIRECT_WRITE
    end if;
  end if;

  -- Held always equals the sum of the account's open holds (few per account).
  if new.held <> old.held then
    if new.held <> (select coalesce(sum(h.amount), 0) from ledger.holds h
                     where h.account_id = new.id and h.status = 'placed') then
      raise exception 'The held amount of account % can change only by placing or closing a hold', new.id
        using errcode = 'PW122'; -- BALANCE_DIRECT_WRITE
    end if;
  end if;

  -- Also a CHECK constraint; raised here first to give the caller a clear code.
  if not new.allow_negative and new.balance - new.held < 0 then
    raise exception 'Insufficient funds: the available balance of wallet % would be %', new.id, new.balance - new.held
      using errcode = 'PW101'; -- INSUFFICIENT_FUNDS
  end if;
  return new;
end;
$$;
create or replace trigger _100_guard before update on ledger.accounts
  for each row execute function ledger.tg_accounts_before_update();

-- Nothing but the functions' owner touches the ledger directly: the API and
-- the worker go through SECURITY DEFINER functions, auditors through views.
revoke all on ledger.currencies, ledger.accounts, ledger.entries, ledger.postings, ledger.holds
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function ledger.tg_append_only() from public;
revoke all on function ledger.tg_entries_before_insert() from public;
revoke all on function ledger.tg_entries_check_balanced() from public;
revoke all on function ledger.tg_accounts_before_insert() from public;
revoke all on function ledger.tg_accounts_before_update() from public;
--! EndIncluded ledger/guards.sql
--! Included commerce/settings.sql
-- Commerce settings: app_private.commerce_settings rows (a DBA changes them
-- with an UPDATE), overridden per session by pgwallet.commerce_<name>.

create or replace function commerce.setting(p_name text)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(nullif(current_setting('pgwallet.commerce_' || p_name, true), '')::bigint,
                  (select s.value from app_private.commerce_settings s where s.name = p_name));
$$;
comment on function commerce.setting(text) is
  'A commerce setting: pgwallet.commerce_<name> if set in the session, else app_private.commerce_settings.';

revoke all on app_private.commerce_settings from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function commerce.setting(text) from public;
--! EndIncluded commerce/settings.sql
--! Included commerce/merchants.sql
-- Merchants: a user becomes one with becomeMerchant; admins suspend them.
-- The merchant role is checked in SQL, like admin: an active merchants row
-- for the signed-in user (kept in its own table rather than users.role, so an
-- admin can also sell and a suspension needs no role change).

-- The signed-in user's merchant id if they are an active merchant, else null.
create or replace function commerce.current_merchant_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.id
    from app_public.merchants m
    join app_public.users u on u.id = m.id
   where m.id = app_public.current_user_id()
     and m.status = 'active'
     and u.erased_at is null;
$$;

create or replace function commerce.assert_merchant()
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := commerce.current_merchant_id();
begin
  if v_id is null then
    if exists (select from app_public.merchants m where m.id = app_public.current_user_id() and m.status = 'suspended') then
      raise exception 'Your merchant account is suspended' using errcode = 'PW502'; -- MERCHANT_SUSPENDED
    end if;
    raise exception 'Only merchants may do this; call becomeMerchant first' using errcode = 'PW501'; -- MERCHANT_REQUIRED
  end if;
  return v_id;
end;
$$;

-- The GraphQL mutation `becomeMerchant`: makes the caller a merchant (or
-- renames an existing one). A suspended merchant stays suspended.
create or replace function app_public.become_merchant(display_name text)
returns app_public.merchants
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_name text := btrim(become_merchant.display_name);
  v_merchant app_public.merchants;
begin
  if v_caller is null then
    raise exception 'Sign in to become a merchant' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  if v_name is null or length(v_name) not between 1 and 100 then
    raise exception 'A display name of 1 to 100 characters is required' using errcode = 'PW503'; -- MERCHANT_NAME_INVALID
  end if;
  insert into app_public.merchants (id, display_name) values (v_caller, v_name)
  on conflict (id) do update set display_name = excluded.display_name, updated_at = now()
  returning * into v_merchant;
  return v_merchant;
end;
$$;
comment on function app_public.become_merchant(text) is
  E'Makes you a merchant with this display name (or renames you): you can then list products, sell them and see your sales. '
  'Your merchant wallet (one per currency) receives the money of your sales.';

-- The GraphQL mutation `adminSetMerchantStatus`: suspends or reactivates a
-- merchant. A suspended merchant cannot sell, change products or be paid.
create or replace function app_public.admin_set_merchant_status(merchant_id uuid, status app_public.merchant_status, reason text)
returns app_public.merchants
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reason text;
  v_merchant app_public.merchants;
begin
  perform app_private.assert_admin();
  v_reason := app_private.assert_reason(admin_set_merchant_status.reason);
  update app_public.merchants m
     set status = admin_set_merchant_status.status,
         suspension_reason = case when admin_set_merchant_status.status = 'suspended' then v_reason end,
         updated_at = now()
   where m.id = admin_set_merchant_status.merchant_id
  returning * into v_merchant;
  if v_merchant.id is null then
    raise exception 'Merchant % not found', admin_set_merchant_status.merchant_id using errcode = 'PW504'; -- MERCHANT_NOT_FOUND
  end if;
  perform app_private.log_admin_action('set_merchant_status', 'merchant', v_merchant.id::text,
                                       jsonb_build_object('status', v_merchant.status, 'reason', v_reason));
  return v_merchant;
end;
$$;
comment on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) is
  'Suspends or reactivates a merchant (admins only; logged). A suspended merchant''s products cannot be bought.';

revoke all on function commerce.current_merchant_id() from public;
revoke all on function commerce.assert_merchant() from public;
revoke all on function app_public.become_merchant(text) from public;
revoke all on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) from public;
grant execute on function app_public.become_merchant(text) to app_user;
grant execute on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) to app_admin;
--! EndIncluded commerce/merchants.sql
--! Included commerce/merchant_wallet.sql
-- Merchant wallets: kind merchant_wallet, owner = the merchant, one logical
-- wallet per (merchant, currency) split into shards like the system accounts
-- (ledger.system_account). Every sale credits the shard of the posting
-- session's backend, so a popular merchant's buyers do not queue on one row
-- lock; the balance is the sum over the shards.
--
-- Money leaves a merchant wallet (refunds, payouts) in ONE entry with one leg
-- per shard, taking each shard's available balance in id order until the
-- amount is covered: no sweep entry first, no shard is ever negative, and the
-- entry locks every shard (plus the other side) in id order like every ledger
-- writer. Debits are rare next to credits, so locking all shards is cheap.

-- The shard this session credits, opened on first use.
create or replace function commerce.merchant_account(p_merchant_id uuid, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard smallint := pg_backend_pid() % least(greatest(coalesce(commerce.setting('merchant_shards'), 16), 1), 256);
  v_id uuid;
begin
  select a.id into v_id from ledger.accounts a
   where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.shard = v_shard;
  if v_id is null then
    perform ledger.assert_currency(p_currency);
    insert into ledger.accounts (kind, owner_id, currency, shard) values ('merchant_wallet', p_merchant_id, p_currency, v_shard)
    on conflict (owner_id, currency, shard) where owner_id is not null and kind <> 'user_wallet' do nothing
    returning id into v_id;
    if v_id is null then  -- another session opened it first
      select a.id into v_id from ledger.accounts a
       where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.shard = v_shard;
    end if;
  end if;
  return v_id;
end;
$$;

-- Legs that take p_amount out of the merchant's shards into p_to, after
-- locking the shards and p_to in id order. INSUFFICIENT_FUNDS (PW101) when
-- the shards' available sum is short.
create or replace function commerce.merchant_debit_legs(p_merchant_id uuid, p_currency text, p_amount bigint, p_to uuid)
returns ledger.leg[]
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_legs ledger.leg[] := array[row(p_to, p_amount)::ledger.leg];
  v_left bigint := p_amount;
  v_shard record;
begin
  perform from ledger.accounts a
   where a.id = p_to or (a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency)
   order by a.id for update;
  for v_shard in
    select a.id, a.balance - a.held as available from ledger.accounts a
     where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.balance - a.held > 0
     order by a.id
  loop
    exit when v_left = 0;
    v_legs := v_legs || row(v_shard.id, -least(v_left, v_shard.available))::ledger.leg;
    v_left := v_left - least(v_left, v_shard.available);
  end loop;
  if v_left > 0 then
    raise exception 'The merchant wallet has % available; % is needed',
      app_private.format_money(p_amount - v_left, p_currency), app_private.format_money(p_amount, p_currency)
      using errcode = 'PW101'; -- INSUFFICIENT_FUNDS
  end if;
  return v_legs;
end;
$$;

-- The caller's merchant wallets, one row per currency, summed over shards.
create or replace function app_public.my_merchant_balances()
returns table (currency char(3), balance bigint, available_balance bigint, shards int)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.currency, sum(a.balance)::bigint, sum(a.balance - a.held)::bigint, count(*)::int
    from ledger.accounts a
   where a.owner_id = commerce.current_merchant_id() and a.kind::text = 'merchant_wallet'
   group by a.currency
   order by a.currency;
$$;
comment on function app_public.my_merchant_balances() is
  'Your merchant wallet per currency (the sum of its shards): what your sales earned, less refunds and payouts.';

-- The GraphQL mutation `merchantPayout`: moves money from the caller's
-- merchant wallet to their own user wallet (same currency) in one entry over
-- the shards; from there requestWithdrawal pays it out to a bank account with
-- the withdrawal machinery unchanged (limits, holds, Revio payouts, failures).
create or replace function app_public.merchant_payout(currency text, amount bigint, idempotency_key text)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_merchant uuid := commerce.assert_merchant();
  v_entry_id uuid := uuidv7();
  v_first uuid;
  v_wallet uuid;
begin
  perform ledger.assert_amount(merchant_payout.amount);
  perform ledger.assert_currency(merchant_payout.currency);
  v_first := app_private.idempotency_claim('merchant:' || v_merchant, merchant_payout.idempotency_key, 'merchant_payout',
    jsonb_build_object('currency', merchant_payout.currency, 'amount', merchant_payout.amount), v_entry_id);
  if v_first is not null then
    return v_first;
  end if;
  v_wallet := ledger.open_wallet(v_merchant, merchant_payout.currency);
  perform ledger.post_entry('transfer',
    commerce.merchant_debit_legs(v_merchant, merchant_payout.currency, merchant_payout.amount, v_wallet),
    'Merchant payout to own wallet', jsonb_build_object('merchant_id', v_merchant),
    'merchant:' || v_merchant || '/' || merchant_payout.idempotency_key, null, v_entry_id);
  return v_entry_id;
end;
$$;
comment on function app_public.merchant_payout(text, bigint, text) is
  E'Moves `amount` minor units from your merchant wallet to your own wallet of that currency (returns the entry id); '
  'withdraw from there with requestWithdrawal. Repeating a request with the same `idempotencyKey` moves nothing more.';

revoke all on function commerce.merchant_account(uuid, text) from public;
revoke all on function commerce.merchant_debit_legs(uuid, text, bigint, uuid) from public;
revoke all on function app_public.my_merchant_balances() from public;
revoke all on function app_public.merchant_payout(text, bigint, text) from public;
grant execute on function app_public.my_merchant_balances() to app_user;
grant execute on function app_public.merchant_payout(text, bigint, text) to app_user;
--! EndIncluded commerce/merchant_wallet.sql
--! Included commerce/products.sql
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
--! EndIncluded commerce/products.sql
--! Included commerce/stock.sql
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
--! EndIncluded commerce/stock.sql
--! Included commerce/purchase.sql
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
--! EndIncluded commerce/purchase.sql
--! Included commerce/reservations.sql
-- Reservations (tickets): reserveItems takes the stock and places a ledger
-- hold on the buyer's wallet for reservation_seconds (default 600);
-- confirmReservation turns it into a paid order; an unconfirmed one expires:
-- the worker (commerce_expire_reservations, every minute) and a lazy check
-- (take_stock, confirmReservation) give the stock and the money back.
--
-- Exactly once: confirm, cancel and expiry all lock the order row first and
-- act only on status 'reserved', deciding by expires_at against their own
-- transaction's clock. Whoever locks first wins; the other sees the new
-- status and does nothing. Lock order: order → products → accounts.
--
-- The ledger hold expires an hour after the reservation, so the ledger's own
-- expiry job never races ours; it only frees the money if commerce expiry is
-- down for that long.

-- Releases an unpaid order (reserved or awaiting payment, already locked):
-- stock back, hold released if still open, status set. Returns the order.
create or replace function commerce.release_order(p_order_id uuid, p_status app_public.order_status)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  select o.* into v_order from app_public.orders o where o.id = p_order_id for update;
  if v_order.status not in ('reserved', 'awaiting_payment') then
    return v_order;  -- already decided
  end if;
  perform commerce.return_stock(v_order.id);
  if v_order.hold_id is not null and exists (select from ledger.holds h where h.id = v_order.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_order.hold_id);
  end if;
  update app_public.orders o set status = p_status, closed_at = now() where o.id = v_order.id
  returning * into v_order;
  return v_order;
end;
$$;

-- Expires up to p_limit overdue reservations (of p_products only, if given);
-- returns how many. Rows another transaction holds (a confirmation under
-- way) are skipped: that transaction decides them. SECURITY DEFINER so that
-- the worker needs EXECUTE on this function only (the narrow app_worker role).
create or replace function commerce.expire_reservations(p_limit int default 100, p_products uuid[] default null)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
  v_count int := 0;
begin
  for v_id in
    select o.id from app_public.orders o
     where o.status = 'reserved' and o.expires_at <= now()
       and (p_products is null or exists (select from app_public.order_lines l where l.order_id = o.id and l.product_id = any (p_products)))
     order by o.expires_at
     limit p_limit
       for update skip locked
  loop
    perform commerce.release_order(v_id, 'expired');
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

-- The GraphQL mutation `reserveItems`.
create or replace function app_public.reserve_items(items app_public.order_item[], idempotency_key text)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_seconds bigint := coalesce(commerce.setting('reservation_seconds'), 600);
  v_order app_public.orders;
  v_res record;
  v_wallet uuid;
  v_hold uuid;
begin
  if v_caller is null then
    raise exception 'Sign in to reserve' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_res
    from commerce.create_order(v_caller, commerce.normalise_items(reserve_items.items), 'reserved', 'wallet',
                               reserve_items.idempotency_key) o;
  v_order := v_res.result;
  if not v_res.created then
    return v_order;
  end if;
  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = v_caller and a.currency = v_order.currency;
  if v_wallet is null then
    raise exception 'You have no % wallet', v_order.currency using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  v_hold := ledger.place_hold(v_wallet, v_order.total, now() + make_interval(secs => v_seconds) + interval '1 hour',
                              'Reservation ' || v_order.id);
  update app_public.orders o set hold_id = v_hold, expires_at = now() + make_interval(secs => v_seconds)
   where o.id = v_order.id
  returning * into v_order;
  return v_order;
end;
$$;
comment on function app_public.reserve_items(app_public.order_item[], text) is
  E'Reserves `items` for you for a few minutes (10 by default; see `expiresAt`): the stock is taken and the price is held '
  'on your wallet. confirmReservation pays the merchant; otherwise the reservation expires and both come back. '
  'Repeating a request with the same `idempotencyKey` returns the first reservation.';

-- The caller's order, locked; someone else's is reported as missing.
create or replace function commerce.lock_buyer_order(p_buyer uuid, p_order_id uuid)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  if p_buyer is null then
    raise exception 'Sign in first' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_order from app_public.orders o where o.id = p_order_id and o.buyer_id = p_buyer for update;
  if v_order.id is null then
    raise exception 'Order % not found', p_order_id using errcode = 'PW530'; -- ORDER_NOT_FOUND
  end if;
  return v_order;
end;
$$;

-- The GraphQL mutation `confirmReservation`: pays a reservation (releasing
-- its hold and posting the order's entry in the same transaction: a hold is
-- captured to one account, the order pays the merchant and the fee). An
-- overdue reservation is expired right here and returned as `expired`.
create or replace function app_public.confirm_reservation(order_id uuid)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders := commerce.lock_buyer_order(app_public.current_user_id(), confirm_reservation.order_id);
begin
  if v_order.status <> 'reserved' then
    if v_order.status in ('paid', 'refunded', 'expired', 'cancelled') and v_order.hold_id is not null then
      return v_order;  -- decided before: a repeated confirmation changes nothing
    end if;
    raise exception 'Order % is not a reservation', v_order.id using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;
  if v_order.expires_at <= now() then
    return commerce.release_order(v_order.id, 'expired');
  end if;
  -- Lock the three accounts of the entry in id order first (as post_entry
  -- would), so that releasing the hold does not lock the buyer's wallet out of order.
  perform from ledger.accounts a
   where a.id in (select h.account_id from ledger.holds h where h.id = v_order.hold_id)
      or a.id = commerce.merchant_account(v_order.merchant_id, v_order.currency)
      or a.id = ledger.system_account('fees', v_order.currency)
   order by a.id for update;
  if exists (select from ledger.holds h where h.id = v_order.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_order.hold_id);
  end if;
  if exists (select from app_public.merchants m where m.id = v_order.merchant_id and m.status <> 'active') then
    raise exception 'The merchant is suspended' using errcode = 'PW512'; -- PRODUCT_NOT_AVAILABLE
  end if;
  return commerce.pay_order(v_order);
end;
$$;
comment on function app_public.confirm_reservation(uuid) is
  'Pays your reservation: the order becomes `paid`. A reservation past `expiresAt` comes back `expired` (stock and money released); confirming again changes nothing.';

-- The GraphQL mutation `cancelReservation`.
create or replace function app_public.cancel_reservation(order_id uuid)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders := commerce.lock_buyer_order(app_public.current_user_id(), cancel_reservation.order_id);
begin
  if v_order.status <> 'reserved' then
    if v_order.status in ('expired', 'cancelled') then
      return v_order;
    end if;
    raise exception 'Order % is not an open reservation', v_order.id using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;
  return commerce.release_order(v_order.id, case when v_order.expires_at <= now() then 'expired' else 'cancelled' end::app_public.order_status);
end;
$$;
comment on function app_public.cancel_reservation(uuid) is 'Gives back a reservation you no longer want: stock and money are released at once.';

revoke all on function commerce.release_order(uuid, app_public.order_status) from public;
revoke all on function commerce.expire_reservations(int, uuid[]) from public;
revoke all on function commerce.lock_buyer_order(uuid, uuid) from public;
revoke all on function app_public.reserve_items(app_public.order_item[], text) from public;
revoke all on function app_public.confirm_reservation(uuid) from public;
revoke all on function app_public.cancel_reservation(uuid) from public;
grant execute on function app_public.reserve_items(app_public.order_item[], text) to app_user;
grant execute on function app_public.confirm_reservation(uuid) to app_user;
grant execute on function app_public.cancel_reservation(uuid) to app_user;
--! EndIncluded commerce/reservations.sql
--! Included commerce/card.sql
-- Purchase by card: the order is created `awaiting_payment` with its stock
-- taken, and a deposit of the order's total into the buyer's wallet is
-- started with the existing deposit machinery (app_private.create_deposit:
-- Revio checkout, webhooks, reconciliation). When the deposit becomes paid,
-- in the same transaction as the credit, a trigger pays the order from the
-- wallet (buyer → merchant + fee). When the deposit fails, is cancelled or
-- expires, the trigger releases the stock. The money thus passes through the
-- buyer's wallet, where it stays if the order can no longer be paid (e.g.
-- the wallet was frozen meanwhile): nothing is lost, the order is `failed`.

create or replace function app_public.purchase_by_card(items app_public.order_item[], idempotency_key text)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_order app_public.orders;
  v_res record;
  v_wallet uuid;
  v_deposit app_public.deposits;
begin
  if v_caller is null then
    raise exception 'Sign in to buy' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_res
    from commerce.create_order(v_caller, commerce.normalise_items(purchase_by_card.items), 'awaiting_payment', 'card',
                               purchase_by_card.idempotency_key) o;
  v_order := v_res.result;
  if not v_res.created then
    return v_order;
  end if;
  v_wallet := ledger.open_wallet(v_caller, v_order.currency);
  v_deposit := app_private.create_deposit(v_caller, v_wallet, v_order.total, 'order:' || v_order.id);
  update app_public.orders o set deposit_id = v_deposit.id where o.id = v_order.id returning * into v_order;
  return v_order;
end;
$$;
comment on function app_public.purchase_by_card(app_public.order_item[], text) is
  E'Buys `items` by card through Revio''s checkout: the order is `awaiting_payment` with the stock reserved, and '
  '`deposit` (poll it for `checkoutUrl`) collects the money. When Revio reports the payment the order becomes `paid`; '
  'if the checkout fails or expires the order is `failed`/`expired` and the stock comes back. Deposit limits apply.';

-- After a deposit's status changes: settle the order it pays, if any.
create or replace function commerce.tg_deposit_settles_order()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  select o.* into v_order from app_public.orders o where o.deposit_id = new.id for update;
  if v_order.id is null or v_order.status <> 'awaiting_payment' then
    return null;
  end if;
  if new.status = 'paid' then
    begin
      perform commerce.pay_order(v_order);
    exception when sqlstate 'PW101' or sqlstate 'PW102' or sqlstate 'PW106' then
      -- The credit stands (it happened at Revio); only the order fails.
      perform commerce.release_order(v_order.id, 'failed');
    end;
  elsif new.status in ('failed', 'cancelled', 'expired') then
    perform commerce.release_order(v_order.id, case when new.status = 'expired' then 'expired' else 'failed' end::app_public.order_status);
  end if;
  return null;
end;
$$;
drop trigger if exists _500_settle_order on app_public.deposits;
create trigger _500_settle_order after update of status on app_public.deposits
  for each row when (old.status is distinct from new.status)
  execute function commerce.tg_deposit_settles_order();

revoke all on function app_public.purchase_by_card(app_public.order_item[], text) from public;
revoke all on function commerce.tg_deposit_settles_order() from public;
grant execute on function app_public.purchase_by_card(app_public.order_item[], text) to app_user;
--! EndIncluded commerce/card.sql
--! Included commerce/refunds.sql
-- Refunds: the merchant gives back some or all units of a paid order, from
-- the merchant wallet to the buyer's wallet (one entry over the merchant's
-- shards, see merchant_wallet.sql), optionally putting the units back on
-- sale. The platform keeps its fee (the merchant bears it). Card-paid orders
-- are refunded to the buyer's wallet too: the Revio refund machinery is being
-- built on another branch; once it lands, card orders can go back to the card.

create or replace function app_public.refund_order(
  order_id uuid,
  idempotency_key text,
  items app_public.order_item[] default null,
  restock boolean default false,
  reason text default null
)
returns app_public.order_refunds
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_merchant uuid := commerce.assert_merchant();
  v_order app_public.orders;
  v_items app_public.order_item[];
  v_refund app_public.order_refunds;
  v_amount bigint;
  v_wallet uuid;
  v_entry_id uuid := uuidv7();
begin
  if refund_order.idempotency_key is null or length(refund_order.idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  if length(refund_order.reason) > 500 then
    raise exception 'A reason has at most 500 characters' using errcode = 'PW540'; -- REFUND_INVALID
  end if;
  select o.* into v_order from app_public.orders o
   where o.id = refund_order.order_id and o.merchant_id = v_merchant for update;
  if v_order.id is null then
    raise exception 'Order % not found', refund_order.order_id using errcode = 'PW530'; -- ORDER_NOT_FOUND
  end if;
  -- The order lock serialises refunds of one order: a repeat finds the first.
  select r.* into v_refund from app_public.order_refunds r
   where r.order_id = v_order.id and r.idempotency_key = refund_order.idempotency_key;
  if v_refund.id is not null then
    if v_refund.restock <> coalesce(refund_order.restock, false)
       or (refund_order.items is not null and v_refund.items <> commerce.items_request(commerce.normalise_items(refund_order.items))) then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_refund;
  end if;
  if v_order.status <> 'paid' then
    raise exception 'Only paid orders can be refunded; this one is %', v_order.status using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;

  -- Units to refund: the given ones, or everything not refunded yet.
  if refund_order.items is null then
    select array_agg(row(l.product_id, l.quantity - l.refunded_quantity)::app_public.order_item order by l.product_id) into v_items
      from app_public.order_lines l where l.order_id = v_order.id and l.quantity > l.refunded_quantity;
  else
    v_items := commerce.normalise_items(refund_order.items);
  end if;
  select sum(i.quantity * l.unit_price)::bigint into v_amount
    from unnest(v_items) i join app_public.order_lines l on l.order_id = v_order.id and l.product_id = i.product_id
   where i.quantity <= l.quantity - l.refunded_quantity
  having count(*) = cardinality(v_items);
  if v_amount is null then
    raise exception 'Each refunded item must be a line of the order with at most its unrefunded quantity'
      using errcode = 'PW540'; -- REFUND_INVALID
  end if;

  update app_public.order_lines l
     set refunded_quantity = l.refunded_quantity + i.quantity,
         restocked_quantity = l.restocked_quantity + case when refund_order.restock then i.quantity else 0 end
    from unnest(v_items) i
   where l.order_id = v_order.id and l.product_id = i.product_id;
  if refund_order.restock then
    perform commerce.return_stock(v_order.id, v_items);  -- products before accounts
  end if;

  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = v_order.buyer_id and a.currency = v_order.currency;
  perform ledger.post_entry('refund', commerce.merchant_debit_legs(v_merchant, v_order.currency, v_amount, v_wallet),
                            'Refund of order ' || v_order.id,
                            jsonb_build_object('order_id', v_order.id, 'merchant_id', v_merchant, 'buyer_id', v_order.buyer_id),
                            'merchant:' || v_merchant || '/refund/' || v_order.id || '/' || refund_order.idempotency_key, null, v_entry_id);

  insert into app_public.order_refunds (order_id, amount, items, restock, reason, idempotency_key, entry_id)
  values (v_order.id, v_amount, commerce.items_request(v_items), coalesce(refund_order.restock, false),
          nullif(btrim(refund_order.reason), ''), refund_order.idempotency_key, v_entry_id)
  returning * into v_refund;
  update app_public.orders o
     set refunded = o.refunded + v_amount,
         status = case when o.refunded + v_amount = o.total then 'refunded' else o.status end,
         closed_at = case when o.refunded + v_amount = o.total then now() else o.closed_at end
   where o.id = v_order.id;
  return v_refund;
end;
$$;
comment on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) is
  E'Refunds your customer (merchants only): `items` (default: every unit not yet refunded) at the prices paid, from your '
  'merchant wallet to the buyer''s wallet; `restock: true` puts the units back on sale. The platform fee is not returned. '
  'Card-paid orders are refunded to the buyer''s wallet. Repeating a request with the same `idempotencyKey` returns the first refund.';

revoke all on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) from public;
grant execute on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) to app_user;
--! EndIncluded commerce/refunds.sql
--! Included commerce/reports.sql
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
--! EndIncluded commerce/reports.sql
--! Included commerce/policies.sql
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
--! EndIncluded commerce/policies.sql
-- The worker may run the reservation-expiry task (and this re-asserts SECURITY
-- DEFINER on task functions whose files were included above).
--! Included worker/grants.sql
-- The job worker's privileges, all in this one file (issue 9 §5).
--
-- The worker logs in as its own role, app_worker (created by
-- src/db/bootstrap.ts; docs/runbook.md), never as the owner: the owner is for
-- migrations only. It may EXECUTE exactly the functions its tasks call, each
-- SECURITY DEFINER with a pinned search_path, and use graphile-worker's schema
-- (app_private.grant_worker_queue below). Nothing else: no table of ours.
--
-- TASK AUTHORS: when a task (src/worker/tasks, or a domain's src/<domain>/tasks.ts) calls a new SQL function, add
-- it to the list below (and keep this file --!include'd LAST in current.sql:
-- `create or replace function` resets SECURITY DEFINER, so a later re-include
-- of the function's own file must be followed by this one).
-- tests/worker-privileges.test.ts fails if a task's function is missing here.

grant usage on schema app_private, ledger, commerce to app_worker;

do $$
declare
  v_fn regprocedure;
begin
  foreach v_fn in array array[
    -- ledger_expire_holds
    'ledger.expire_holds(int)',
    -- ledger_purge_idempotency
    'app_private.purge_idempotency_records(interval, int)',
    -- revio.purge_deliveries
    'app_private.purge_revio_deliveries(int, int, int)',
    -- revio.create_purchase
    'app_private.deposit_for_purchase(uuid)',
    'app_private.fail_deposit(uuid, text)',
    'app_private.mark_revio_requested(text, uuid)',
    -- revio.create_payout
    'app_private.withdrawal_for_payout(uuid)',
    'app_private.fail_withdrawal(uuid, text)',
    -- every Revio job (src/worker/tasks/revio-job.ts)
    'app_private.flag_payment(text, uuid, text)',
    'app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text)',
    -- revio.reconcile_pending / revio.reconcile_daily
    'app_private.revio_objects_to_reconcile(interval, int)',
    'app_private.reconcile_revio_object(text, uuid, text)',
    'app_private.revio_objects_for_daily_check(timestamptz)',
    'app_private.record_revio_reconciliation(jsonb)',
    -- send_email (src/worker/tasks/send-email.ts)
    'app_private.email_to_send(bigint)',
    'app_private.mark_email_sent(bigint)',
    -- voting_close_events / voting_snapshot_leaderboards (src/voting/tasks.ts)
    'app_private.close_due_events()',
    'app_private.snapshot_leaderboards()',
    -- commerce_expire_reservations (src/commerce/tasks.ts)
    'commerce.expire_reservations(int, uuid[])'
  ]::regprocedure[] loop
    -- Runs as the owner, whatever the caller; each of these pins search_path
    -- in its own file (tests/admin.test.ts-style check in the worker test).
    execute format('alter function %s security definer', v_fn);
    execute format('grant execute on function %s to app_worker', v_fn);
  end loop;
end
$$;

-- graphile-worker's own schema: the worker takes, completes and fails jobs,
-- and keeps cron state there. Installed by graphile-worker's migrations as the
-- owner (npm run migrate, installWorkerSchema), which calls this afterwards;
-- called here too for a database where the schema already exists.
-- graphile-worker turns row-level security on for its private tables (no
-- policy: only their owner may touch them), so app_worker also gets one
-- policy per such table that lets it see and change every row.
create or replace function app_private.grant_worker_queue()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_table regclass;
begin
  if to_regnamespace('graphile_worker') is null then
    return;
  end if;
  grant usage on schema graphile_worker to app_worker;
  grant select, insert, update, delete on all tables in schema graphile_worker to app_worker;
  grant usage, select on all sequences in schema graphile_worker to app_worker;
  grant execute on all functions in schema graphile_worker to app_worker;
  for v_table in
    select c.oid::regclass from pg_class c
     where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind = 'r' and c.relrowsecurity
       and not exists (select from pg_policy p where p.polrelid = c.oid and p.polname = 'app_worker_queue')
  loop
    execute format('create policy app_worker_queue on %s for all to app_worker using (true) with check (true)', v_table);
  end loop;
end;
$$;
revoke all on function app_private.grant_worker_queue() from public;
select app_private.grant_worker_queue();
--! EndIncluded worker/grants.sql

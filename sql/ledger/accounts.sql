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

--! Previous: sha1:f84e3b89e631eeca4035e2891a3ecb17f2793f4c
--! Hash: sha1:5cdb02afd82ba23cac1b93cd7945e3f2f9c0a903
--! Message: ledger

-- The ledger: double-entry accounts, journal entries, postings and holds,
-- idempotency records, the wallet API and the audit views (issue 3).
--
-- Tables and types live here, in history. Every invariant that must hold
-- against any writer (the owner's ad-hoc SQL included) is enforced by the
-- triggers and checks in sql/ledger/*.sql; the functions that move money are
-- there too. docs/runbook-ledger.md explains the model to a DBA.

-- Currencies we hold, with the number of minor units (ISO 4217 exponent).
create table ledger.currencies (
  code       char(3) primary key check (code ~ '^[A-Z]{3}$'),
  minor_unit smallint not null check (minor_unit between 0 and 4),
  name       text not null
);
insert into ledger.currencies (code, minor_unit, name) values
  ('ZAR', 2, 'South African rand'),
  ('USD', 2, 'US dollar'),
  ('EUR', 2, 'Euro'),
  ('GBP', 2, 'Pound sterling'),
  ('BWP', 2, 'Botswana pula'),
  ('NAD', 2, 'Namibian dollar'),
  ('KES', 2, 'Kenyan shilling'),
  ('NGN', 2, 'Nigerian naira');

-- user_wallet: one per (user, currency); the others are system accounts, one
-- logical account per (kind, currency) split into shards (see system_account).
create type ledger.account_kind as enum ('user_wallet', 'revio_clearing', 'withdrawals_in_flight', 'fees');

-- What an entry does; the wallet history shows it and filters on it.
create type ledger.entry_kind as enum ('transfer', 'deposit', 'withdrawal', 'payout', 'fee', 'reversal', 'adjustment');

create type ledger.hold_status as enum ('placed', 'captured', 'released', 'expired');

-- One leg of an entry for post_entry: add amount to the account's balance.
create type ledger.leg as (account_id uuid, amount bigint);

-- Sign convention: a posting's amount is added to its account's balance, and
-- every entry sums to zero per currency. A user wallet's balance is what we
-- owe its owner; system accounts mirror it (clearing goes negative as money
-- arrives at Revio), so only they may go below zero (allow_negative is the
-- "normal side" of the account).
create table ledger.accounts (
  id             uuid primary key default uuidv7(),
  kind           ledger.account_kind not null,
  owner_id       uuid references app_public.users on delete restrict,
  currency       char(3) not null references ledger.currencies,
  shard          smallint not null default 0 check (shard >= 0),
  allow_negative boolean not null default false,
  balance        bigint not null default 0,
  held           bigint not null default 0 check (held >= 0),
  version        bigint not null default 0 check (version >= 0),  -- sequence of the last posting
  frozen         boolean not null default false,
  created_at     timestamptz not null default now(),
  constraint accounts_owner_iff_wallet check ((kind = 'user_wallet') = (owner_id is not null)),
  constraint accounts_wallets_never_negative check (kind <> 'user_wallet' or not allow_negative),
  constraint accounts_wallet_has_one_shard check (kind <> 'user_wallet' or shard = 0),
  constraint accounts_available_not_negative check (allow_negative or balance - held >= 0)
) with (fillfactor = 50);  -- room on each page for the many HOT updates of balances
create unique index accounts_one_wallet_per_currency on ledger.accounts (owner_id, currency) where kind = 'user_wallet';
create unique index accounts_system_shard on ledger.accounts (kind, currency, shard) where kind <> 'user_wallet';

create table ledger.entries (
  id                uuid primary key default uuidv7(),
  kind              ledger.entry_kind not null,
  memo              text check (length(memo) <= 500),
  idempotency_ref   text,                       -- '<caller>/<key>' of the request that made it
  effective_at      timestamptz not null default now(),
  created_at        timestamptz not null default now(),
  metadata          jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
  reverses_entry_id uuid references ledger.entries,
  -- The transaction that wrote the entry: postings may be added to an entry
  -- only by that transaction (see tg_postings_before_insert).
  txid              xid8 not null default pg_current_xact_id()
);
-- An entry is reversed at most once.
create unique index entries_reversed_once on ledger.entries (reverses_entry_id) where reverses_entry_id is not null;
-- For "what moved in this period": entries arrive in time order, so BRIN is
-- enough and costs next to nothing on insert.
create index entries_created_at_idx on ledger.entries using brin (created_at);

create table ledger.postings (
  id            uuid primary key default uuidv7(),
  entry_id      uuid not null references ledger.entries,
  account_id    uuid not null references ledger.accounts,
  currency      char(3) not null,
  amount        bigint not null check (amount <> 0),
  balance_after bigint not null,
  sequence      bigint not null check (sequence > 0),   -- 1, 2, 3 … per account
  created_at    timestamptz not null default now(),
  constraint postings_account_sequence unique (account_id, sequence)
);
create index postings_entry_id_idx on ledger.postings (entry_id);

create table ledger.holds (
  id               uuid primary key default uuidv7(),
  account_id       uuid not null references ledger.accounts,
  amount           bigint not null check (amount > 0),
  status           ledger.hold_status not null default 'placed',
  memo             text check (length(memo) <= 500),
  expires_at       timestamptz not null,
  captured_amount  bigint check (captured_amount > 0 and captured_amount <= amount),
  -- Deferred: capture marks the hold before it writes the entry (see capture_hold).
  capture_entry_id uuid references ledger.entries deferrable initially deferred,
  created_at       timestamptz not null default now(),
  closed_at        timestamptz,
  constraint holds_capture_consistent check ((status = 'captured') = (capture_entry_id is not null and captured_amount is not null)),
  constraint holds_closed_consistent check ((status = 'placed') = (closed_at is null))
);
create index holds_open_by_account_idx on ledger.holds (account_id) where status = 'placed';
create index holds_open_by_expiry_idx on ledger.holds (expires_at) where status = 'placed';

-- Idempotency: (caller, key) → the fingerprint of the first request and the
-- entry it made. The entry's id is chosen when the key is claimed, before the
-- entry exists, hence the deferred foreign key. Purged after a retention
-- window by the worker (BRIN: rows arrive in time order, the index is tiny).
create table app_private.idempotency_records (
  caller      text not null,
  key         text not null,
  operation   text not null,
  fingerprint bytea not null,
  entry_id    uuid not null references ledger.entries deferrable initially deferred,
  created_at  timestamptz not null default now(),
  primary key (caller, key)
);
create index idempotency_records_created_at_idx on app_private.idempotency_records using brin (created_at);

-- What transfer returns: the new entry as the sender sees it.
create type app_public.transfer_entry as (
  id              uuid,
  kind            ledger.entry_kind,
  amount          bigint,
  currency        char(3),
  memo            text,
  from_wallet_id  uuid,
  to_wallet_id    uuid,
  recipient_name  text,
  created_at      timestamptz
);

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
  new.allow_negative := new.kind <> 'user_wallet';
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
--! Included ledger/posting_triggers.sql
-- A posting is the only thing that moves a balance. Its sequence number and
-- balance_after are computed here from the locked account row, whatever the
-- writer supplied, and the account is brought up to date right after: so the
-- stored balance always equals the last balance_after, which equals the sum
-- of the account's postings, without ever re-summing history.

create or replace function ledger.tg_postings_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account record;
begin
  -- One lookup for the account (locked: usually already by post_entry, in id
  -- order; locking again is cheap and serialises a hand-written INSERT just
  -- the same) and the entry the posting joins.
  select a.id, a.currency, a.balance, a.version, a.frozen, e.txid as entry_txid
    into v_account
    from ledger.accounts a
    left join ledger.entries e on e.id = new.entry_id
   where a.id = new.account_id
     for update of a;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if v_account.entry_txid is distinct from pg_current_xact_id() then
    raise exception 'Postings can be added only to an entry written in the same transaction'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;

  if new.currency is null then
    new.currency := v_account.currency;
  elsif new.currency <> v_account.currency then
    raise exception 'A % posting cannot go to the % account %', new.currency, v_account.currency, v_account.id
      using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  if new.amount < 0 and v_account.frozen then
    raise exception 'Wallet % is frozen and cannot be debited', v_account.id using errcode = 'PW102'; -- WALLET_FROZEN
  end if;

  new.sequence := v_account.version + 1;
  new.balance_after := v_account.balance + new.amount;  -- bigint overflow raises, never wraps
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_sequence before insert on ledger.postings
  for each row execute function ledger.tg_postings_before_insert();

-- AFTER, so that the accounts guard can see the posting that explains the
-- new balance. Two postings to one account in a single INSERT statement would
-- get the same sequence number and fail on the unique key: post_entry merges
-- legs per account for this reason.
create or replace function ledger.tg_postings_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update ledger.accounts
     set balance = new.balance_after, version = new.sequence
   where id = new.account_id;
  return null;
end;
$$;
create or replace trigger _200_apply after insert on ledger.postings
  for each row execute function ledger.tg_postings_apply();

revoke all on function ledger.tg_postings_before_insert() from public;
revoke all on function ledger.tg_postings_apply() from public;
--! EndIncluded ledger/posting_triggers.sql
--! Included ledger/hold_triggers.sql
-- Holds reserve part of a wallet's balance (a withdrawal in progress, a card
-- authorisation). The account's `held` is kept equal to the sum of its open
-- holds by these triggers, so available = balance - held is always current.
-- A hold is placed once and closed once: captured, released or expired.

create or replace function ledger.tg_holds_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_frozen boolean;
begin
  select a.frozen into v_frozen from ledger.accounts a where a.id = new.account_id for update;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if v_frozen then
    raise exception 'Wallet % is frozen; no new holds can be placed on it', new.account_id
      using errcode = 'PW102'; -- WALLET_FROZEN
  end if;
  new.status := 'placed';
  new.captured_amount := null;
  new.capture_entry_id := null;
  new.closed_at := null;
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_placed before insert on ledger.holds
  for each row execute function ledger.tg_holds_before_insert();

create or replace function ledger.tg_holds_before_update()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if (new.id, new.account_id, new.amount, new.expires_at, new.memo, new.created_at)
     is distinct from (old.id, old.account_id, old.amount, old.expires_at, old.memo, old.created_at) then
    raise exception 'A hold''s account, amount, expiry and memo cannot change' using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  if new.status is distinct from old.status then
    if old.status <> 'placed' then
      raise exception 'Hold % is already %', old.id, old.status using errcode = 'PW113'; -- HOLD_NOT_OPEN
    end if;
    new.closed_at := now();
  elsif (new.captured_amount, new.capture_entry_id, new.closed_at)
        is distinct from (old.captured_amount, old.capture_entry_id, old.closed_at) then
    raise exception 'A hold changes only by being captured, released or expired' using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;
  return new;
end;
$$;
create or replace trigger _100_transition before update on ledger.holds
  for each row execute function ledger.tg_holds_before_update();

-- AFTER, so the accounts guard can re-add the open holds and find them equal.
create or replace function ledger.tg_holds_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    update ledger.accounts set held = held + new.amount where id = new.account_id;
  elsif old.status = 'placed' and new.status <> 'placed' then
    update ledger.accounts set held = held - old.amount where id = old.account_id;
  end if;
  return null;
end;
$$;
create or replace trigger _200_apply after insert or update on ledger.holds
  for each row execute function ledger.tg_holds_apply();

-- A captured hold must be backed, by commit time, by its entry debiting the
-- account with the captured amount (capture_hold writes both).
create or replace function ledger.tg_holds_check_capture()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from ledger.postings p
                  where p.entry_id = new.capture_entry_id and p.account_id = new.account_id
                    and p.amount = -new.captured_amount) then
    raise exception 'Hold % is marked captured but entry % does not debit its account by %',
      new.id, new.capture_entry_id, new.captured_amount using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;
  return null;
end;
$$;
drop trigger if exists _900_capture_backed on ledger.holds;
create constraint trigger _900_capture_backed after update on ledger.holds
  deferrable initially deferred
  for each row when (new.status = 'captured' and old.status = 'placed')
  execute function ledger.tg_holds_check_capture();

revoke all on function ledger.tg_holds_check_capture() from public;
revoke all on function ledger.tg_holds_before_insert() from public;
revoke all on function ledger.tg_holds_before_update() from public;
revoke all on function ledger.tg_holds_apply() from public;
--! EndIncluded ledger/hold_triggers.sql
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
  if p_kind = 'user_wallet' then
    raise exception 'system_account: % is not a system account kind', p_kind using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  select a.id into v_id from ledger.accounts a
   where a.kind = p_kind and a.currency = p_currency and a.shard = v_shard;
  if v_id is null then
    perform ledger.assert_currency(p_currency);
    insert into ledger.accounts (kind, currency, shard) values (p_kind, p_currency, v_shard)
    on conflict (kind, currency, shard) where kind <> 'user_wallet' do nothing
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
--! Included ledger/post_entry.sql
-- The one way money moves: an entry with two or more legs, written at once.
-- The triggers do the bookkeeping (sequence, balance_after, stored balance)
-- and refuse anything wrong; this function adds the lock order and the early,
-- clear errors.

create or replace function ledger.post_entry(
  p_kind ledger.entry_kind,
  p_legs ledger.leg[],
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_reverses_entry_id uuid default null,
  p_entry_id uuid default null          -- lets capture_hold name the entry before writing it
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry_id uuid := coalesce(p_entry_id, uuidv7());
  v_legs ledger.leg[];
  v_bad_leg boolean;
  v_found bigint;
  v_unbalanced bigint;
begin
  -- One leg per account: a posting's sequence comes from its account row, so
  -- two postings to one account in one INSERT would collide. Merge them.
  select coalesce(array_agg(row(m.account_id, m.amount)::ledger.leg order by m.account_id) filter (where m.amount <> 0), '{}'),
         coalesce(bool_or(m.bad), false)
    into v_legs, v_bad_leg
    from (select l.account_id, sum(l.amount)::bigint as amount,
                 bool_or(l.account_id is null or l.amount is null or l.amount = 0) as bad
            from unnest(p_legs) l group by l.account_id) m;
  if v_bad_leg then
    raise exception 'Every leg needs an account and a non-zero amount' using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;

  -- Written before the accounts are locked, to keep the locks short; its
  -- postings follow below, and the whole entry is checked again at commit.
  insert into ledger.entries (id, kind, memo, metadata, idempotency_ref, reverses_entry_id)
  values (v_entry_id, p_kind, p_memo, coalesce(p_metadata, '{}'), p_idempotency_ref, p_reverses_entry_id);

  -- Lock every account in id order. All writers lock this way (holds too),
  -- so two entries touching the same accounts queue instead of deadlocking.
  -- The same statement sums the legs per currency for an early, clear error
  -- (the deferred trigger on entries checks again at commit).
  select coalesce(sum(g.legs), 0), count(*) filter (where g.total <> 0)
    into v_found, v_unbalanced
    from (select k.currency, count(*) as legs, sum(l.amount) as total
            from (select a.id, a.currency from ledger.accounts a
                   where a.id = any (array(select l.account_id from unnest(v_legs) l))
                   order by a.id
                     for update) k
            join unnest(v_legs) l on l.account_id = k.id
           group by k.currency) g;

  if v_found <> cardinality(v_legs) then
    raise exception 'An account in this entry does not exist' using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if cardinality(v_legs) < 2 or v_unbalanced > 0 then
    raise exception 'An entry needs at least two accounts and must sum to zero in each currency'
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;

  insert into ledger.postings (entry_id, account_id, amount)
  select v_entry_id, l.account_id, l.amount from unnest(v_legs) l order by l.account_id;

  return v_entry_id;
end;
$$;
comment on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) is
  'Posts one balanced entry atomically; raises INSUFFICIENT_FUNDS, WALLET_FROZEN, CURRENCY_MISMATCH, ENTRY_UNBALANCED, ACCOUNT_NOT_FOUND.';

-- Amounts are whole minor units from 1 to 10^15 (10 trillion rand): far
-- beyond any real payment, and far from overflowing a bigint balance.
create or replace function ledger.assert_amount(p_amount bigint)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_amount is null or p_amount <= 0 or p_amount > 1000000000000000 then
    raise exception 'The amount must be a whole number of minor units between 1 and 1000000000000000'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
end;
$$;

-- The common case: move an amount from one account to another.
create or replace function ledger.move(
  p_kind ledger.entry_kind,
  p_from uuid,
  p_to uuid,
  p_amount bigint,
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_entry_id uuid default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform ledger.assert_amount(p_amount);
  return ledger.post_entry(p_kind, array[row(p_from, -p_amount), row(p_to, p_amount)]::ledger.leg[],
                           p_memo, p_metadata, p_idempotency_ref, null, p_entry_id);
end;
$$;

revoke all on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) from public;
revoke all on function ledger.assert_amount(bigint) from public;
revoke all on function ledger.move(ledger.entry_kind, uuid, uuid, bigint, text, jsonb, text, uuid) from public;
--! EndIncluded ledger/post_entry.sql
--! Included ledger/holds.sql
-- Two-phase movements: place a hold (available drops at once), then capture
-- it (post the entry, fully or in part) or release it; holds left open past
-- their expiry are expired by the worker (ledger_expire_holds).
-- Lock order, as everywhere: accounts by id first, then the hold row.

create or replace function ledger.place_hold(
  p_account_id uuid,
  p_amount bigint,
  p_expires_at timestamptz,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  perform ledger.assert_amount(p_amount);
  if p_expires_at is null or p_expires_at <= now() then
    raise exception 'A hold must expire in the future' using errcode = 'PW126'; -- HOLD_EXPIRY_INVALID
  end if;
  -- The insert trigger locks the account and refuses frozen ones; the
  -- accounts guard refuses a hold larger than the available balance.
  insert into ledger.holds (account_id, amount, expires_at, memo)
  values (p_account_id, p_amount, p_expires_at, p_memo)
  returning id into v_id;
  return v_id;
end;
$$;

-- Locks and returns an open hold, after locking its account (and p_other_account,
-- if any) in id order.
create or replace function ledger.lock_open_hold(p_hold_id uuid, p_other_account uuid default null)
returns ledger.holds
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold ledger.holds;
begin
  select h.* into v_hold from ledger.holds h where h.id = p_hold_id;
  if not found then
    raise exception 'Hold % does not exist', p_hold_id using errcode = 'PW112'; -- HOLD_NOT_FOUND
  end if;
  perform from ledger.accounts a where a.id in (v_hold.account_id, p_other_account) order by a.id for update;
  select h.* into v_hold from ledger.holds h where h.id = p_hold_id for update;
  if v_hold.status <> 'placed' then
    raise exception 'Hold % is already %', p_hold_id, v_hold.status using errcode = 'PW113'; -- HOLD_NOT_OPEN
  end if;
  return v_hold;
end;
$$;

-- Captures p_amount (default: all) of the hold into p_to_account; the rest
-- goes back to the available balance. Returns the entry.
create or replace function ledger.capture_hold(
  p_hold_id uuid,
  p_to_account uuid,
  p_kind ledger.entry_kind,
  p_amount bigint default null,
  p_memo text default null,
  p_metadata jsonb default '{}'
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold ledger.holds := ledger.lock_open_hold(p_hold_id, p_to_account);
  v_amount bigint := coalesce(p_amount, v_hold.amount);
  v_entry_id uuid := uuidv7();
begin
  if v_hold.expires_at <= now() then
    raise exception 'Hold % expired at %', p_hold_id, v_hold.expires_at using errcode = 'PW113'; -- HOLD_NOT_OPEN
  end if;
  if v_amount <= 0 or v_amount > v_hold.amount then
    raise exception 'A capture must be between 1 and the held % minor units', v_hold.amount
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  -- Close the hold first so that the held amount no longer covers it; the
  -- debit below then spends exactly what the hold had reserved.
  update ledger.holds
     set status = 'captured', captured_amount = v_amount, capture_entry_id = v_entry_id
   where id = p_hold_id;
  return ledger.post_entry(p_kind, array[row(v_hold.account_id, -v_amount), row(p_to_account, v_amount)]::ledger.leg[],
                           coalesce(p_memo, v_hold.memo), coalesce(p_metadata, '{}') || jsonb_build_object('hold_id', p_hold_id),
                           null, null, v_entry_id);
end;
$$;

create or replace function ledger.release_hold(p_hold_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform ledger.lock_open_hold(p_hold_id);
  update ledger.holds set status = 'released' where id = p_hold_id;
end;
$$;

-- Expires up to p_limit overdue holds; returns how many. Accounts are locked
-- in id order across the batch, like every other writer; a hold captured or
-- released meanwhile is skipped.
create or replace function ledger.expire_holds(p_limit int default 1000)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold record;
  v_count int := 0;
begin
  for v_hold in
    select h.id, h.account_id from ledger.holds h
     where h.status = 'placed' and h.expires_at <= now()
     order by h.account_id, h.id
     limit p_limit
  loop
    perform from ledger.accounts a where a.id = v_hold.account_id for update;
    update ledger.holds set status = 'expired'
     where id = v_hold.id and status = 'placed' and expires_at <= now();
    if found then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

revoke all on function ledger.place_hold(uuid, bigint, timestamptz, text) from public;
revoke all on function ledger.lock_open_hold(uuid, uuid) from public;
revoke all on function ledger.capture_hold(uuid, uuid, ledger.entry_kind, bigint, text, jsonb) from public;
revoke all on function ledger.release_hold(uuid) from public;
revoke all on function ledger.expire_holds(int) from public;
--! EndIncluded ledger/holds.sql
--! Included ledger/reverse_entry.sql
-- Corrections never edit history: a reversal is a new entry with every
-- posting negated, linked to the original. An entry is reversed at most once
-- (unique reverses_entry_id), and a reversal is not itself reversible (post a
-- new entry instead). The reversal obeys every rule a normal entry does: it
-- fails with INSUFFICIENT_FUNDS if the money has already been spent, and
-- WALLET_FROZEN if it would debit a frozen wallet.

create or replace function ledger.reverse_entry(p_entry_id uuid, p_memo text default null)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry ledger.entries;
  v_legs ledger.leg[];
begin
  select e.* into v_entry from ledger.entries e where e.id = p_entry_id;
  if not found then
    raise exception 'Entry % does not exist', p_entry_id using errcode = 'PW114'; -- ENTRY_NOT_FOUND
  end if;
  if v_entry.reverses_entry_id is not null then
    raise exception 'Entry % is a reversal; post a new entry instead of reversing it', p_entry_id
      using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end if;
  if exists (select from ledger.entries r where r.reverses_entry_id = p_entry_id) then
    raise exception 'Entry % has already been reversed', p_entry_id using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end if;

  select array_agg(row(p.account_id, -p.amount)::ledger.leg) into v_legs
    from ledger.postings p where p.entry_id = p_entry_id;

  begin
    return ledger.post_entry('reversal', v_legs, coalesce(p_memo, 'Reversal of ' || coalesce(v_entry.memo, v_entry.kind::text)),
                             jsonb_build_object('reverses_kind', v_entry.kind), null, p_entry_id);
  exception when unique_violation then
    -- Two reversals raced; the unique key let one through.
    raise exception 'Entry % has already been reversed', p_entry_id using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end;
end;
$$;

revoke all on function ledger.reverse_entry(uuid, text) from public;
--! EndIncluded ledger/reverse_entry.sql
--! Included ledger/idempotency.sql
-- Idempotency for money-moving requests. A request claims (caller, key) by
-- inserting the record in its own transaction. Identical requests racing it
-- wait on the primary key until it commits, then find the record and return
-- the first result; if it rolls back (the transfer failed), one of them takes
-- over. So 20 identical requests at once make exactly one entry. A failed
-- request leaves no record: repeating it runs it again.

-- Claims (caller, key) for a request that will write the entry p_entry_id
-- (an id chosen by the caller, so the record is complete when inserted and
-- never updated). Returns null when the key is now ours: go ahead and post
-- that entry in this transaction (the foreign key, deferred, insists on it).
-- Returns the first request's entry when the key was used for the same
-- request; refuses a different request with IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.idempotency_claim(
  p_caller text,
  p_key text,
  p_operation text,
  p_request jsonb,
  p_entry_id uuid
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  -- jsonb prints keys in a fixed order, so equal requests hash equally.
  v_fingerprint bytea := sha256(convert_to(p_operation || ':' || p_request::text, 'UTF8'));
  v_record app_private.idempotency_records;
begin
  if p_key is null or length(p_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  insert into app_private.idempotency_records (caller, key, operation, fingerprint, entry_id)
  values (p_caller, p_key, p_operation, v_fingerprint, p_entry_id)
  on conflict (caller, key) do nothing;
  if found then
    return null;
  end if;
  select r.* into v_record from app_private.idempotency_records r where r.caller = p_caller and r.key = p_key;
  if v_record.fingerprint <> v_fingerprint or v_record.operation <> p_operation then
    raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
  end if;
  return v_record.entry_id;
end;
$$;

-- Deletes records older than the window, in batches so that no long lock is
-- held; returns how many went. After this a replayed key runs again, so the
-- window must exceed any client's retry horizon (default 7 days).
create or replace function app_private.purge_idempotency_records(p_older_than interval default '7 days', p_batch int default 10000)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_total bigint := 0;
  v_batch bigint;
begin
  loop
    delete from app_private.idempotency_records r
     where (r.caller, r.key) in (select o.caller, o.key from app_private.idempotency_records o
                                  where o.created_at < now() - p_older_than
                                  limit p_batch);
    get diagnostics v_batch = row_count;
    v_total := v_total + v_batch;
    exit when v_batch < p_batch;
  end loop;
  return v_total;
end;
$$;

revoke all on app_private.idempotency_records from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function app_private.idempotency_claim(text, text, text, jsonb, uuid) from public;
revoke all on function app_private.purge_idempotency_records(interval, int) from public;
--! EndIncluded ledger/idempotency.sql
--! Included ledger/transfer.sql
-- User-to-user transfers: same currency, one idempotent entry.
-- app_private.transfer does the work for a caller already identified;
-- app_public.transfer is the GraphQL mutation and identifies the caller.

-- What transfer returns for an entry, as the sender sees it. Built from the
-- immutable entry, so a repeated request gets exactly the first answer.
create or replace function app_private.transfer_entry(p_entry_id uuid)
returns app_public.transfer_entry
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  select e.id, e.kind, d.amount, d.currency, e.memo, s.account_id, d.account_id, u.full_name, e.created_at
    from ledger.entries e
    join ledger.postings s on s.entry_id = e.id and s.amount < 0
    join ledger.postings d on d.entry_id = e.id and d.amount > 0
    join ledger.accounts da on da.id = d.account_id
    left join app_public.users u on u.id = da.owner_id
   where e.id = p_entry_id;
$$;

create or replace function app_private.transfer(
  p_caller uuid,
  p_from_wallet_id uuid,
  p_to_email text,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_memo text := nullif(btrim(p_memo), '');
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
  v_recipient record;
begin
  perform ledger.assert_amount(p_amount);
  if length(v_memo) > 140 then
    raise exception 'The memo may be at most 140 characters' using errcode = 'PW111'; -- MEMO_INVALID
  end if;

  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'transfer',
    jsonb_build_object('from', p_from_wallet_id, 'to', lower(btrim(p_to_email)), 'amount', p_amount, 'memo', v_memo),
    v_entry_id);
  if v_first_entry_id is not null then
    return app_private.transfer_entry(v_first_entry_id);
  end if;

  -- Someone else's wallet is reported exactly like a missing one.
  select a.* into v_from from ledger.accounts a
   where a.id = p_from_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_from_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;

  select u.id, u.full_name, a.id as wallet_id into v_recipient
    from app_public.users u
    left join ledger.accounts a on a.kind = 'user_wallet' and a.owner_id = u.id and a.currency = v_from.currency
   where u.email = btrim(p_to_email)::citext;
  if not found then
    raise exception 'No user has the email address %', p_to_email using errcode = 'PW107'; -- RECIPIENT_NOT_FOUND
  end if;
  if v_recipient.id = p_caller then
    raise exception 'You cannot transfer money to yourself' using errcode = 'PW108'; -- TRANSFER_TO_SELF
  end if;
  if v_recipient.wallet_id is null then
    raise exception 'The recipient has no % wallet', v_from.currency using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  -- Accounts are locked only in here, after every check above, to keep the
  -- time wallets stay locked short.
  perform ledger.move('transfer', v_from.id, v_recipient.wallet_id, p_amount, v_memo,
                      jsonb_build_object('from_user', p_caller, 'to_user', v_recipient.id),
                      v_caller || '/' || p_idempotency_key, v_entry_id);
  -- The entry as transfer_entry(v_entry_id) would read it back.
  return row(v_entry_id, 'transfer', p_amount, v_from.currency, v_memo, v_from.id, v_recipient.wallet_id,
             v_recipient.full_name, now())::app_public.transfer_entry;
end;
$$;

comment on type app_public.transfer_entry is 'A transfer as its sender sees it.';
comment on column app_public.transfer_entry.id is E'@notNull\nThe journal entry''s id.';
comment on column app_public.transfer_entry.kind is '@notNull';
comment on column app_public.transfer_entry.amount is E'@notNull\nMinor units moved.';
comment on column app_public.transfer_entry.currency is '@notNull';
comment on column app_public.transfer_entry.from_wallet_id is '@notNull';
comment on column app_public.transfer_entry.to_wallet_id is '@notNull';
comment on column app_public.transfer_entry.created_at is E'@notNull\nWhen the transfer was recorded.';

-- The GraphQL mutation `transfer`.
create or replace function app_public.transfer(
  from_wallet_id uuid,
  to_email text,
  amount bigint,
  idempotency_key text,
  memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to transfer money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.transfer(v_caller, from_wallet_id, to_email, amount, idempotency_key, memo);
end;
$$;
comment on function app_public.transfer(uuid, text, bigint, text, text) is
  E'Moves `amount` minor units from one of your wallets to the wallet of the same currency of the user with email `toEmail`. '
  'Repeating a request with the same `idempotencyKey` returns the first result and moves nothing; reusing a key for a different request fails with IDEMPOTENCY_KEY_REUSED.';

-- A payment from a wallet to the fees account: the "hot system account" case.
-- Every such payment credits one logical account, sharded (system_account).
create or replace function app_private.pay_fee(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
begin
  perform ledger.assert_amount(p_amount);
  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'pay_fee',
    jsonb_build_object('wallet', p_wallet_id, 'amount', p_amount, 'memo', p_memo), v_entry_id);
  if v_first_entry_id is not null then
    return v_first_entry_id;
  end if;
  select a.* into v_from from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  return ledger.move('fee', v_from.id, ledger.system_account('fees', v_from.currency), p_amount, p_memo,
                     '{}', v_caller || '/' || p_idempotency_key, v_entry_id);
end;
$$;

revoke all on function app_private.transfer_entry(uuid) from public;
revoke all on function app_private.transfer(uuid, uuid, text, bigint, text, text) from public;
revoke all on function app_private.pay_fee(uuid, uuid, bigint, text, text) from public;
revoke all on function app_public.transfer(uuid, text, bigint, text, text) from public;
grant execute on function app_public.transfer(uuid, text, bigint, text, text) to app_user;
--! EndIncluded ledger/transfer.sql
--! Included ledger/wallet_api.sql
-- The wallet API in app_public. Wallets and their history are views over the
-- ledger that show the signed-in user's own rows only: the filter is part of
-- each view (security_barrier keeps a caller's predicates from running
-- before it), and the ledger tables themselves stay out of reach.

create or replace view app_public.wallets with (security_barrier) as
  select a.id,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nYour wallets: one per currency. Amounts are in minor units (cents).';
comment on column app_public.wallets.id is E'@notNull';
comment on column app_public.wallets.currency is E'@notNull\nISO 4217 code, e.g. ZAR.';
comment on column app_public.wallets.balance is E'@notNull\n@behavior -filterBy -orderBy\nEverything in the wallet, in minor units, including held money.';
comment on column app_public.wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy\nWhat can be spent now: balance minus held.';
comment on column app_public.wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy\nReserved by pending withdrawals and other holds.';
comment on column app_public.wallets.frozen is E'@notNull\n@behavior -filterBy -orderBy\nA frozen wallet can receive money but not send it.';
comment on column app_public.wallets.created_at is E'@notNull\n@behavior -filterBy';

-- One row per posting to one of your wallets, with the other side of the
-- entry named for display. Wallet.transactions pages through it newest first.
create or replace view app_public.wallet_transactions with (security_barrier) as
  select p.account_id as wallet_id,
         p.sequence,
         p.entry_id,
         p.amount,
         p.currency,
         e.kind,
         e.memo,
         cp.name as counterparty_name,
         p.balance_after,
         p.created_at as occurred_at
    from ledger.postings p
    join ledger.accounts a on a.id = p.account_id
    join ledger.entries e on e.id = p.entry_id
    left join lateral (
      -- The largest leg on the other side of the entry: a person, or what a
      -- system account stands for.
      select coalesce(u.full_name, case oa.kind when 'revio_clearing' then 'Revio'
                                                when 'withdrawals_in_flight' then 'Bank withdrawal'
                                                when 'fees' then 'pgwallet fees' end) as name
        from ledger.postings o
        join ledger.accounts oa on oa.id = o.account_id
        left join app_public.users u on u.id = oa.owner_id
       where o.entry_id = p.entry_id and o.account_id <> p.account_id and sign(o.amount) <> sign(p.amount)
       order by abs(o.amount) desc, o.id
       limit 1
    ) cp on true
   where a.kind = 'user_wallet'
     and a.owner_id = (select app_public.current_user_id());
comment on view app_public.wallet_transactions is
  E'@primaryKey wallet_id,sequence\n'
  '@foreignKey (wallet_id) references app_public.wallets (id)|@fieldName wallet|@foreignFieldName transactions\n'
  '@behavior -insert -update -delete -query:resource:list -query:resource:connection -query:resource:single\n'
  'A movement of money in one of your wallets.';
comment on column app_public.wallet_transactions.wallet_id is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.sequence is E'@notNull\n@behavior -filterBy -orderBy\nPosition in the wallet''s history: 1 for the first movement.';
comment on column app_public.wallet_transactions.entry_id is E'@notNull\n@behavior -filterBy -orderBy\nThe journal entry this movement belongs to (a transfer''s id).';
comment on column app_public.wallet_transactions.amount is E'@notNull\n@behavior -filterBy -orderBy\nSigned minor units: positive arrived, negative left.';
comment on column app_public.wallet_transactions.currency is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.kind is E'@notNull\n@behavior -orderBy\nWhat kind of movement this is.';
comment on column app_public.wallet_transactions.memo is E'@behavior -filterBy -orderBy';
comment on column app_public.wallet_transactions.counterparty_name is E'@behavior -filterBy -orderBy\nWho is on the other side: a person''s name, or Revio, Bank withdrawal, pgwallet fees.';
comment on column app_public.wallet_transactions.balance_after is E'@notNull\n@behavior -filterBy -orderBy\nThe wallet balance right after this movement.';
comment on column app_public.wallet_transactions.occurred_at is E'@notNull\n@behavior -filterBy -orderBy\nWhen the movement was recorded.';

-- The GraphQL mutation `openWallet`: returns your wallet in that currency,
-- opening it if you have none yet (so calling it twice is harmless).
create or replace function app_public.open_wallet(currency text)
returns app_public.wallets
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_id uuid;
  v_wallet app_public.wallets;
begin
  if v_caller is null then
    raise exception 'Sign in to open a wallet' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  v_id := ledger.open_wallet(v_caller, upper(btrim(open_wallet.currency)));
  select w.* into v_wallet from app_public.wallets w where w.id = v_id;
  return v_wallet;
end;
$$;
comment on function app_public.open_wallet(text) is
  'Opens a wallet in an ISO 4217 currency (e.g. USD), or returns the one you already have. Unsupported codes fail with CURRENCY_INVALID.';

-- Filtering on kind casts to ledger.entry_kind, which needs USAGE on the
-- schema. USAGE alone grants nothing on the ledger's tables or functions.
grant usage on schema ledger to app_user;
revoke all on app_public.wallets, app_public.wallet_transactions from public, app_anonymous, app_user;
grant select on app_public.wallets, app_public.wallet_transactions to app_user;
revoke all on function app_public.open_wallet(text) from public;
grant execute on function app_public.open_wallet(text) to app_user;
--! EndIncluded ledger/wallet_api.sql
--! Included audit/ledger.sql
-- Read-only views for DBAs and auditors (role app_auditor). They run with the
-- owner's rights, so an auditor needs nothing on the ledger itself. What each
-- view should show on a healthy system, and what to do if it does not, is in
-- docs/runbook-ledger.md.

-- Per currency, everything must net to zero: money is only ever moved.
create or replace view audit.trial_balance as
  select a.currency,
         count(*) as accounts,
         sum(a.balance) as net_balance,                                        -- must be 0
         sum(a.balance) filter (where a.kind = 'user_wallet') as owed_to_users,
         sum(a.balance) filter (where a.kind <> 'user_wallet') as system_total,
         sum(a.held) as held
    from ledger.accounts a
   group by a.currency;
comment on view audit.trial_balance is 'Per currency: net_balance must be 0 (owed_to_users = -system_total).';

-- The logical balance of each system account, summed over its shards.
create or replace view audit.system_balances as
  select a.kind, a.currency, count(*) as shards, sum(a.balance) as balance, sum(a.version) as postings
    from ledger.accounts a
   where a.kind <> 'user_wallet'
   group by a.kind, a.currency;

-- Every posting with its entry: filter on account_id (or owner_email) and
-- order by sequence to read an account's statement.
create or replace view audit.account_statement as
  select p.account_id,
         a.kind as account_kind,
         a.currency,
         u.email as owner_email,
         p.sequence,
         p.created_at,
         e.kind as entry_kind,
         p.entry_id,
         e.memo,
         case when p.amount < 0 then -p.amount end as debit,
         case when p.amount > 0 then p.amount end as credit,
         p.balance_after,
         e.reverses_entry_id
    from ledger.postings p
    join ledger.accounts a on a.id = p.account_id
    join ledger.entries e on e.id = p.entry_id
    left join app_public.users u on u.id = a.owner_id;

-- Accounts whose stored figures disagree with their history. Must be empty.
-- Reads every posting: run it off-peak or on a replica for big ledgers.
create or replace view audit.balance_drift as
  with history as (
    select p.account_id, sum(p.amount) as posted, count(*) as postings, max(p.sequence) as last_sequence
      from ledger.postings p group by p.account_id
  ), open_holds as (
    select h.account_id, sum(h.amount) as held from ledger.holds h where h.status = 'placed' group by h.account_id
  )
  select a.id as account_id, a.kind, a.currency,
         a.balance as stored_balance, coalesce(hi.posted, 0) as posted_balance,
         a.held as stored_held, coalesce(oh.held, 0) as open_holds,
         a.version, coalesce(hi.postings, 0) as postings, hi.last_sequence
    from ledger.accounts a
    left join history hi on hi.account_id = a.id
    left join open_holds oh on oh.account_id = a.id
   where a.balance <> coalesce(hi.posted, 0)
      or a.held <> coalesce(oh.held, 0)
      or a.version <> coalesce(hi.postings, 0)
      or a.version <> coalesce(hi.last_sequence, 0)
      or (not a.allow_negative and a.balance - a.held < 0);

-- Entries that do not sum to zero per currency, or have fewer than two
-- postings. Must be empty.
create or replace view audit.unbalanced_entries as
  select e.id as entry_id, e.kind, e.created_at, s.currency, s.total, s.postings
    from ledger.entries e
    left join lateral (
      select p.currency, sum(p.amount) as total, count(*) as postings
        from ledger.postings p where p.entry_id = e.id group by p.currency
    ) s on true
   where s.currency is null or s.total <> 0 or s.postings < 2;

-- Holds still reserving money; overdue ones are waiting for the expiry job
-- (ledger_expire_holds, every minute) — many of them means the worker is down.
create or replace view audit.open_holds as
  select h.id as hold_id, h.account_id, u.email as owner_email, a.currency, h.amount, h.memo,
         h.created_at, h.expires_at, h.expires_at <= now() as overdue
    from ledger.holds h
    join ledger.accounts a on a.id = h.account_id
    left join app_public.users u on u.id = a.owner_id
   where h.status = 'placed';

create or replace view audit.expired_holds as
  select h.id as hold_id, h.account_id, u.email as owner_email, a.currency, h.amount, h.memo,
         h.created_at, h.expires_at, h.closed_at
    from ledger.holds h
    join ledger.accounts a on a.id = h.account_id
    left join app_public.users u on u.id = a.owner_id
   where h.status = 'expired';

-- One row per entry with the amount it moved (the sum of its credits), for
-- "largest movements": filter on created_at and order by amount desc.
create or replace view audit.movements as
  select e.id as entry_id, e.kind, e.created_at, e.memo, p.currency,
         sum(p.amount) filter (where p.amount > 0) as amount,
         count(*) as postings, e.reverses_entry_id
    from ledger.entries e
    join ledger.postings p on p.entry_id = e.id
   group by e.id, p.currency;

-- The triggers that enforce the ledger's invariants, and whether each fires.
-- Only DDL by the owner (or a superuser) can disable or drop one; every row
-- must say enabled, and the count must not drop (docs/runbook-ledger.md).
create or replace view audit.ledger_guards as
  select t.tgrelid::regclass::text as table_name, t.tgname as trigger_name,
         t.tgenabled in ('O', 'A') as enabled, t.tgdeferrable as deferred,
         t.tgfoid::regproc::text as function_name
    from pg_trigger t
   where t.tgrelid in ('ledger.accounts'::regclass, 'ledger.entries'::regclass, 'ledger.postings'::regclass,
                       'ledger.holds'::regclass, 'app_public.users'::regclass)
     and not t.tgisinternal
     and t.tgfoid::regproc::text like 'ledger.%';

-- The largest movements in a period, biggest first.
create or replace function audit.largest_movements(p_from timestamptz, p_to timestamptz, p_limit int default 20)
returns setof audit.movements
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.* from audit.movements m
   where m.created_at >= p_from and m.created_at < p_to
   order by m.amount desc, m.entry_id
   limit p_limit;
$$;

revoke all on audit.trial_balance, audit.system_balances, audit.account_statement, audit.balance_drift,
              audit.unbalanced_entries, audit.open_holds, audit.expired_holds, audit.movements, audit.ledger_guards
  from public;
grant select on audit.trial_balance, audit.system_balances, audit.account_statement, audit.balance_drift,
                audit.unbalanced_entries, audit.open_holds, audit.expired_holds, audit.movements, audit.ledger_guards
  to app_auditor;
revoke all on function audit.largest_movements(timestamptz, timestamptz, int) from public;
grant execute on function audit.largest_movements(timestamptz, timestamptz, int) to app_auditor;
--! EndIncluded audit/ledger.sql

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

--!include ledger/guards.sql
--!include ledger/posting_triggers.sql
--!include ledger/hold_triggers.sql
--!include ledger/accounts.sql
--!include ledger/post_entry.sql
--!include ledger/holds.sql
--!include ledger/reverse_entry.sql
--!include ledger/idempotency.sql
--!include ledger/transfer.sql
--!include ledger/wallet_api.sql
--!include audit/ledger.sql

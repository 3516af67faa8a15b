--! Previous: sha1:5cdb02afd82ba23cac1b93cd7945e3f2f9c0a903
--! Hash: sha1:449e0000dc296f1a7b3197d42af5587e8dd1b55b
--! Message: payments

-- Payments (issue 4): deposits through Revio's checkout, bank accounts and
-- withdrawals through Revio payouts, the Revio webhook inbox and
-- reconciliation. Tables and types live here, in history; the functions,
-- policies, grants and audit views are in sql/payments/*.sql and
-- sql/audit/payments.sql (docs/runbook-payments.md explains them to a DBA).

-- Deposit: pending → awaiting_payment → paid | failed | cancelled | expired.
create type app_public.deposit_status as enum ('pending', 'awaiting_payment', 'paid', 'failed', 'cancelled', 'expired');
-- Withdrawal: requested → submitted → paid | failed.
create type app_public.withdrawal_status as enum ('requested', 'submitted', 'paid', 'failed');
create type app_public.bank_account_type as enum ('cheque', 'savings', 'transmission');

create table app_public.deposits (
  id                    uuid primary key default uuidv7(),
  user_id               uuid not null references app_public.users on delete restrict,
  wallet_id             uuid not null references ledger.accounts,
  amount                bigint not null check (amount > 0),
  currency              char(3) not null references ledger.currencies,
  status                app_public.deposit_status not null default 'pending',
  idempotency_key       text not null check (length(idempotency_key) between 1 and 200),
  checkout_url          text,
  failure_reason        text,
  -- Set when a person must look: retries exhausted, amount mismatch, a
  -- payment after the deposit was closed. attention_reason says why.
  needs_attention       boolean not null default false,
  attention_reason      text,
  revio_purchase_id     text unique,
  revio_status          text,
  -- Set just before the purchase is created at Revio: a later attempt looks
  -- the reference up first, so a lost answer never makes a second purchase.
  purchase_requested_at timestamptz,
  credit_entry_id       uuid unique references ledger.entries,
  reconciled_at         timestamptz,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  paid_at               timestamptz,
  constraint deposits_idempotency unique (user_id, idempotency_key),
  constraint deposits_paid_iff_credited check ((status = 'paid') = (credit_entry_id is not null))
);
create index deposits_user_created_idx on app_public.deposits (user_id, created_at desc);
create index deposits_wallet_idx on app_public.deposits (wallet_id);
create index deposits_open_idx on app_public.deposits (coalesce(reconciled_at, created_at))
  where status in ('pending', 'awaiting_payment');
create index deposits_attention_idx on app_public.deposits (id) where needs_attention;
create trigger _100_timestamps before insert or update on app_public.deposits
  for each row execute function app_private.tg__timestamps();

create table app_public.bank_accounts (
  id                   uuid primary key default uuidv7(),
  user_id              uuid not null references app_public.users on delete restrict,
  account_holder       text not null check (length(account_holder) between 1 and 200),
  bank_name            text not null check (length(bank_name) between 1 and 100),
  branch_code          text not null check (branch_code ~ '^[0-9]{6}$'),
  account_type         app_public.bank_account_type not null,
  account_number_last4 text not null check (account_number_last4 ~ '^[0-9]{4}$'),
  created_at           timestamptz not null default now()
);
create index bank_accounts_user_idx on app_public.bank_accounts (user_id);

-- The full account number, encrypted with AES-256-GCM by the API
-- (src/payments/bank-crypto.ts) under BANK_ACCOUNT_ENCRYPTION_KEY, which
-- never enters the database: 0x01 ‖ key id (4) ‖ IV (12) ‖ tag (16) ‖ data.
create table app_private.bank_account_numbers (
  bank_account_id uuid primary key references app_public.bank_accounts on delete cascade,
  ciphertext      bytea not null check (length(ciphertext) between 34 and 200)
);

create table app_public.withdrawals (
  id                  uuid primary key default uuidv7(),
  user_id             uuid not null references app_public.users on delete restrict,
  wallet_id           uuid not null references ledger.accounts,
  bank_account_id     uuid not null references app_public.bank_accounts,
  amount              bigint not null check (amount > 0),
  currency            char(3) not null references ledger.currencies,
  status              app_public.withdrawal_status not null default 'requested',
  idempotency_key     text not null check (length(idempotency_key) between 1 and 200),
  hold_id             uuid unique references ledger.holds,
  failure_reason      text,
  needs_attention     boolean not null default false,
  attention_reason    text,
  revio_payout_id     text unique,
  revio_status        text,
  -- Set just before the payout is created at Revio (see deposits).
  payout_requested_at timestamptz,
  capture_entry_id    uuid unique references ledger.entries,
  payout_entry_id     uuid unique references ledger.entries,
  reconciled_at       timestamptz,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  submitted_at        timestamptz,
  closed_at           timestamptz,
  constraint withdrawals_idempotency unique (user_id, idempotency_key),
  constraint withdrawals_paid_iff_captured check ((status = 'paid') = (capture_entry_id is not null and payout_entry_id is not null))
);
create index withdrawals_user_created_idx on app_public.withdrawals (user_id, created_at desc);
create index withdrawals_wallet_created_idx on app_public.withdrawals (wallet_id, created_at);
create index withdrawals_open_idx on app_public.withdrawals (coalesce(reconciled_at, created_at))
  where status in ('requested', 'submitted');
create index withdrawals_attention_idx on app_public.withdrawals (id) where needs_attention;
create trigger _100_timestamps before insert or update on app_public.withdrawals
  for each row execute function app_private.tg__timestamps();

-- One row per distinct Revio event: Revio sends no event id, so an event is
-- (object id, event type, status, updated_on) (REVIO_API.md §4).
create table app_private.revio_events (
  object_id   text not null,
  event_type  text not null,
  status      text not null,
  updated_on  bigint not null,
  received_at timestamptz not null default now(),
  primary key (object_id, event_type, status, updated_on)
);

-- Every delivery, as received: webhooks (signed or not), and the objects the
-- worker and reconciliation read from Revio's API, with what came of it.
create table app_private.revio_deliveries (
  id            bigint generated always as identity primary key,
  received_at   timestamptz not null,
  recorded_at   timestamptz not null default now(),
  source        text not null check (source in ('webhook', 'worker', 'reconciliation')),
  signature_ok  boolean not null,
  headers       jsonb not null default '{}',
  body          text not null,
  object_type   text,
  object_id     text,
  event_type    text,
  status        text,
  updated_on    bigint,
  outcome       text not null check (outcome in ('applied', 'duplicate', 'ignored', 'unmatched', 'review', 'invalid', 'bad_signature')),
  detail        text,
  deposit_id    uuid,
  withdrawal_id uuid
);
create index revio_deliveries_received_at_idx on app_private.revio_deliveries using brin (received_at);
create index revio_deliveries_object_idx on app_private.revio_deliveries (object_id);

-- Differences found by the daily reconciliation (revio.reconcile_daily).
create table app_private.revio_discrepancies (
  id            bigint generated always as identity primary key,
  run_id        uuid not null,
  found_at      timestamptz not null default now(),
  kind          text not null,
  object_type   text,
  object_id     text,
  deposit_id    uuid,
  withdrawal_id uuid,
  currency      char(3),
  ledger_amount bigint,
  revio_amount  bigint,
  detail        text not null,
  resolved_at   timestamptz
);
create index revio_discrepancies_open_idx on app_private.revio_discrepancies (found_at) where resolved_at is null;

create table app_private.reconciliation_runs (
  id            uuid primary key default uuidv7(),
  kind          text not null,
  started_at    timestamptz not null default now(),
  objects       int not null default 0,
  discrepancies int not null default 0
);

--! Included payments/settings.sql
-- Payment limits and job settings. The API passes the configured values
-- (DEPOSIT_MIN_CENTS …, see README) to every signed-in request as
-- pgwallet.* settings; these defaults apply when a setting is absent (direct
-- SQL, tests) and equal the environment's defaults.

create or replace function app_private.payment_setting(p_name text)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    nullif(current_setting('pgwallet.' || p_name, true), '')::bigint,
    case p_name
      when 'deposit_min_cents' then 1000              -- R 10
      when 'deposit_max_cents' then 5000000           -- R 50 000
      when 'withdrawal_min_cents' then 1000           -- R 10
      when 'withdrawal_max_cents' then 2500000        -- R 25 000
      when 'withdrawal_daily_limit_cents' then 5000000 -- R 50 000 per wallet per 24 h
      when 'job_max_attempts' then 10                 -- about 9 hours of backoff
    end);
$$;
comment on function app_private.payment_setting(text) is
  'A payment limit or job setting: the pgwallet.<name> setting if the API passed one, else the default.';

-- Formats minor units for messages: 150050 ZAR → "ZAR 1500.50".
create or replace function app_private.format_money(p_amount bigint, p_currency text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select p_currency || ' ' || to_char(p_amount / 100.0, 'FM999999999999990.00');
$$;

revoke all on function app_private.payment_setting(text) from public;
revoke all on function app_private.format_money(bigint, text) from public;
--! EndIncluded payments/settings.sql
--! Included payments/deposits.sql
-- Deposits: createDeposit writes the deposit and queues revio.create_purchase
-- in one transaction; the task creates the Revio purchase (reference = the
-- deposit id) and its answer, like every webhook, goes through
-- app_private.receive_revio_event (revio_events.sql), which moves the status
-- on and credits the wallet exactly once.

-- Queues a Revio job for a deposit or withdrawal. The job key names the row,
-- so audit.dead_payment_jobs can tell whose job died.
create or replace function app_private.queue_revio_job(p_task text, p_key text, p_payload json)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform graphile_worker.add_job(p_task, p_payload, job_key := p_key,
                                  max_attempts := app_private.payment_setting('job_max_attempts')::int);
end;
$$;

-- Creates a deposit for p_caller, or returns the one an earlier identical
-- request made (same key, wallet and amount); a different request with the
-- same key fails with IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.create_deposit(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_idempotency_key text
)
returns app_public.deposits
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_min bigint := app_private.payment_setting('deposit_min_cents');
  v_max bigint := app_private.payment_setting('deposit_max_cents');
  v_wallet ledger.accounts;
  v_deposit app_public.deposits;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  select a.* into v_wallet from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  if p_amount is null or p_amount < v_min or p_amount > v_max then
    raise exception 'A deposit must be between % and %', app_private.format_money(v_min, v_wallet.currency),
      app_private.format_money(v_max, v_wallet.currency)
      using errcode = 'PW201'; -- DEPOSIT_AMOUNT_OUT_OF_RANGE
  end if;

  insert into app_public.deposits (user_id, wallet_id, amount, currency, idempotency_key)
  values (p_caller, v_wallet.id, p_amount, v_wallet.currency, p_idempotency_key)
  on conflict (user_id, idempotency_key) do nothing
  returning * into v_deposit;
  if v_deposit.id is null then
    -- The key was used before (perhaps by a request that was racing us and
    -- has just committed): same request → the same deposit.
    select d.* into v_deposit from app_public.deposits d
     where d.user_id = p_caller and d.idempotency_key = p_idempotency_key;
    if v_deposit.wallet_id <> p_wallet_id or v_deposit.amount <> p_amount then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_deposit;
  end if;

  perform app_private.queue_revio_job('revio.create_purchase', 'deposit:' || v_deposit.id,
                                      json_build_object('deposit_id', v_deposit.id));
  return v_deposit;
end;
$$;

-- The GraphQL mutation `createDeposit`.
create or replace function app_public.create_deposit(wallet_id uuid, amount bigint, idempotency_key text)
returns app_public.deposits
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to deposit money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.create_deposit(v_caller, create_deposit.wallet_id, create_deposit.amount, create_deposit.idempotency_key);
end;
$$;
comment on function app_public.create_deposit(uuid, bigint, text) is
  E'Starts a deposit of `amount` minor units into one of your wallets through Revio''s checkout. '
  'The deposit starts `pending`; poll `depositByRowId` until `checkoutUrl` is set (status `awaiting_payment`), send the person there, '
  'and the wallet is credited when Revio reports the payment (status `paid`). Limits per deposit are configured on the server '
  '(DEPOSIT_AMOUNT_OUT_OF_RANGE). Repeating a request with the same `idempotencyKey` returns the first deposit.';

revoke all on function app_private.queue_revio_job(text, text, json) from public;
revoke all on function app_private.create_deposit(uuid, uuid, bigint, text) from public;
revoke all on function app_public.create_deposit(uuid, bigint, text) from public;
grant execute on function app_public.create_deposit(uuid, bigint, text) to app_user;
--! EndIncluded payments/deposits.sql
--! Included payments/bank_accounts.sql
-- Bank accounts for withdrawals. The API (src/http/graphql/payments-plugin.ts)
-- encrypts the account number with BANK_ACCOUNT_ENCRYPTION_KEY before calling
-- add_bank_account, so the database only ever holds the ciphertext and the
-- last four digits; the worker decrypts it for the payout. The key is never
-- stored here.

-- Saves a bank account for the signed-in user; returns its id. Called by the
-- addBankAccount mutation with the caller's role and claims.
create or replace function app_private.add_bank_account(
  p_account_holder text,
  p_bank_name text,
  p_branch_code text,
  p_account_type text,
  p_account_number_last4 text,
  p_ciphertext bytea
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_holder text := btrim(p_account_holder);
  v_bank text := btrim(p_bank_name);
  v_branch text := regexp_replace(coalesce(p_branch_code, ''), '\s', '', 'g');
  v_type text := lower(btrim(p_account_type));
  v_id uuid;
begin
  if v_caller is null then
    raise exception 'Sign in to add a bank account' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  if v_holder is null or length(v_holder) not between 1 and 200
     or v_bank is null or length(v_bank) not between 1 and 100
     or v_branch !~ '^[0-9]{6}$'
     or v_type is null or v_type not in ('cheque', 'savings', 'transmission')
     or p_account_number_last4 is null or p_account_number_last4 !~ '^[0-9]{4}$'
     or p_ciphertext is null then
    raise exception 'Give the account holder (1-200 characters), the bank (1-100), a 6-digit branch code, the account type (cheque, savings or transmission) and an account number of 6 to 20 digits'
      using errcode = 'PW210'; -- BANK_ACCOUNT_INVALID
  end if;
  insert into app_public.bank_accounts (user_id, account_holder, bank_name, branch_code, account_type, account_number_last4)
  values (v_caller, v_holder, v_bank, v_branch, v_type::app_public.bank_account_type, p_account_number_last4)
  returning id into v_id;
  insert into app_private.bank_account_numbers (bank_account_id, ciphertext) values (v_id, p_ciphertext);
  return v_id;
end;
$$;

revoke all on function app_private.add_bank_account(text, text, text, text, text, bytea) from public;
grant execute on function app_private.add_bank_account(text, text, text, text, text, bytea) to app_user;
--! EndIncluded payments/bank_accounts.sql
--! Included payments/withdrawals.sql
-- Withdrawals: requestWithdrawal places a hold on the wallet (the available
-- balance drops at once) and queues revio.create_payout in one transaction.
-- The task creates and executes the payout (reference = the withdrawal id);
-- payout.success captures the hold (wallet → withdrawals in flight → Revio
-- clearing), payout.failed or a final refusal releases it (revio_events.sql).

-- Creates a withdrawal for p_caller, or returns the one an earlier identical
-- request made; a different request with the same key fails with
-- IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.request_withdrawal(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_bank_account_id uuid,
  p_idempotency_key text
)
returns app_public.withdrawals
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_min bigint := app_private.payment_setting('withdrawal_min_cents');
  v_max bigint := app_private.payment_setting('withdrawal_max_cents');
  v_daily bigint := app_private.payment_setting('withdrawal_daily_limit_cents');
  v_wallet ledger.accounts;
  v_withdrawal app_public.withdrawals;
  v_last_24h bigint;
  v_hold_id uuid;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  select a.* into v_wallet from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  if not exists (select from app_public.bank_accounts b where b.id = p_bank_account_id and b.user_id = p_caller) then
    raise exception 'Bank account % not found', p_bank_account_id using errcode = 'PW211'; -- BANK_ACCOUNT_NOT_FOUND
  end if;
  if p_amount is null or p_amount < v_min or p_amount > v_max then
    raise exception 'A withdrawal must be between % and %', app_private.format_money(v_min, v_wallet.currency),
      app_private.format_money(v_max, v_wallet.currency)
      using errcode = 'PW202'; -- WITHDRAWAL_AMOUNT_OUT_OF_RANGE
  end if;

  insert into app_public.withdrawals (user_id, wallet_id, bank_account_id, amount, currency, idempotency_key)
  values (p_caller, v_wallet.id, p_bank_account_id, p_amount, v_wallet.currency, p_idempotency_key)
  on conflict (user_id, idempotency_key) do nothing
  returning * into v_withdrawal;
  if v_withdrawal.id is null then
    select w.* into v_withdrawal from app_public.withdrawals w
     where w.user_id = p_caller and w.idempotency_key = p_idempotency_key;
    if v_withdrawal.wallet_id <> p_wallet_id or v_withdrawal.amount <> p_amount
       or v_withdrawal.bank_account_id <> p_bank_account_id then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_withdrawal;
  end if;

  -- The wallet's row lock serialises withdrawals from one wallet, so two
  -- requests at once cannot both fit under the daily limit. (place_hold
  -- locks the same row again; every ledger writer locks accounts first.)
  perform from ledger.accounts a where a.id = v_wallet.id for update;
  select coalesce(sum(w.amount), 0) into v_last_24h
    from app_public.withdrawals w
   where w.wallet_id = v_wallet.id and w.created_at > now() - interval '24 hours' and w.status <> 'failed';
  if v_last_24h > v_daily then
    raise exception 'Withdrawals from this wallet may total at most % in 24 hours; % is left',
      app_private.format_money(v_daily, v_wallet.currency),
      app_private.format_money(greatest(v_daily - (v_last_24h - p_amount), 0), v_wallet.currency)
      using errcode = 'PW203'; -- WITHDRAWAL_DAILY_LIMIT_EXCEEDED
  end if;

  -- The hold never expires by itself: while a payout may be under way the
  -- money must stay reserved; success captures it and failure releases it.
  v_hold_id := ledger.place_hold(v_wallet.id, p_amount, 'infinity', 'Withdrawal ' || v_withdrawal.id);
  update app_public.withdrawals set hold_id = v_hold_id where id = v_withdrawal.id
  returning * into v_withdrawal;

  perform app_private.queue_revio_job('revio.create_payout', 'withdrawal:' || v_withdrawal.id,
                                      json_build_object('withdrawal_id', v_withdrawal.id));
  return v_withdrawal;
end;
$$;

-- The GraphQL mutation `requestWithdrawal`.
create or replace function app_public.request_withdrawal(wallet_id uuid, amount bigint, bank_account_id uuid, idempotency_key text)
returns app_public.withdrawals
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to withdraw money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.request_withdrawal(v_caller, request_withdrawal.wallet_id, request_withdrawal.amount,
                                        request_withdrawal.bank_account_id, request_withdrawal.idempotency_key);
end;
$$;
comment on function app_public.request_withdrawal(uuid, bigint, uuid, text) is
  E'Withdraws `amount` minor units from one of your wallets to one of your bank accounts. The amount is held at once '
  '(the available balance drops) and paid out through Revio: status `requested`, then `submitted`, then `paid`, or `failed` '
  'with `failureReason` (the hold is then released). Limits per withdrawal and per 24 hours are configured on the server. '
  'Repeating a request with the same `idempotencyKey` returns the first withdrawal.';

revoke all on function app_private.request_withdrawal(uuid, uuid, bigint, uuid, text) from public;
revoke all on function app_public.request_withdrawal(uuid, bigint, uuid, text) from public;
grant execute on function app_public.request_withdrawal(uuid, bigint, uuid, text) to app_user;
--! EndIncluded payments/withdrawals.sql
--! Included payments/revio_events.sql
-- What Revio tells us, from any source, goes through receive_revio_event:
-- webhooks (the /webhooks/revio route, after checking X-Signature), the
-- worker (the objects Revio returns when it creates or executes them) and
-- reconciliation (objects read back from Revio). It records every delivery,
-- deduplicates events, and applies guarded transitions to the deposit or
-- withdrawal, so replays, duplicates and out-of-order deliveries change
-- nothing that was already decided.

-- A whole number of minor units from a JSON number or digit string, else null.
create or replace function app_private.jsonb_cents(p_value jsonb)
returns bigint
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when jsonb_typeof(p_value) in ('number', 'string') and (p_value #>> '{}') ~ '^[0-9]{1,18}$'
              then (p_value #>> '{}')::bigint end;
$$;

-- The reason Revio gave for the last failed attempt, if any.
create or replace function app_private.revio_attempt_error(p_body jsonb)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select left(p_body #>> '{transaction_data,attempts,-1,error,message}', 500);
$$;

-- Flags a deposit or withdrawal for a person to look at (never silently stuck).
create or replace function app_private.flag_payment(p_kind text, p_id uuid, p_reason text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_kind = 'deposit' then
    update app_public.deposits set needs_attention = true, attention_reason = left(p_reason, 1000) where id = p_id;
  elsif p_kind = 'withdrawal' then
    update app_public.withdrawals set needs_attention = true, attention_reason = left(p_reason, 1000) where id = p_id;
  else
    raise exception 'flag_payment: unknown kind %', p_kind;
  end if;
end;
$$;

-- The deposit a purchase belongs to, locked: by purchase id, else by our
-- reference (the deposit id) when the purchase id was never stored.
create or replace function app_private.lock_deposit_for_purchase(p_body jsonb)
returns app_public.deposits
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_reference text := p_body->>'reference';
begin
  select d.* into v_deposit from app_public.deposits d where d.revio_purchase_id = p_body->>'id' for update;
  if v_deposit.id is null and v_reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select d.* into v_deposit from app_public.deposits d where d.id = v_reference::uuid for update;
  end if;
  return v_deposit;
end;
$$;

-- Applies a purchase snapshot to its deposit. Credits the wallet (Revio
-- clearing → wallet) exactly once, only when amount and currency match.
create or replace function app_private.apply_purchase_event(
  p_body jsonb,
  out outcome text,
  out detail text,
  out deposit_id uuid
)
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_purchase_id text := p_body->>'id';
  v_status text := p_body->>'status';
  v_deposit app_public.deposits := app_private.lock_deposit_for_purchase(p_body);
  v_amount bigint := coalesce(app_private.jsonb_cents(p_body #> '{payment,amount}'), app_private.jsonb_cents(p_body #> '{purchase,total}'));
  v_currency text := coalesce(p_body #>> '{payment,currency}', p_body #>> '{purchase,currency}');
  v_entry uuid;
begin
  if v_deposit.id is null then
    outcome := 'unmatched';
    detail := 'No deposit has this purchase id or reference';
    return;
  end if;
  deposit_id := v_deposit.id;

  if v_deposit.revio_purchase_id is distinct from v_purchase_id then
    if v_deposit.revio_purchase_id is not null then
      detail := format('Revio purchase %s (%s) also names this deposit, which is linked to purchase %s; nothing applied',
                       v_purchase_id, v_status, v_deposit.revio_purchase_id);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
      return;
    end if;
    -- First sight of its purchase: the create call's answer was lost or is late.
    update app_public.deposits d set revio_purchase_id = v_purchase_id, checkout_url = coalesce(d.checkout_url, p_body->>'checkout_url')
     where d.id = v_deposit.id returning d.* into v_deposit;
  end if;

  if v_status in ('paid', 'cleared', 'settled') then
    if v_deposit.status = 'paid' then
      outcome := 'ignored';
      detail := 'Already credited';
    elsif v_deposit.status not in ('pending', 'awaiting_payment') then
      detail := format('Revio reports the purchase %s but the deposit is %s: money may be at Revio without a credit', v_status, v_deposit.status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    elsif v_amount is distinct from v_deposit.amount or v_currency is distinct from v_deposit.currency then
      detail := format('Revio reports %s paid but the deposit is for %s; not credited',
                       coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'an unknown amount'),
                       app_private.format_money(v_deposit.amount, v_deposit.currency));
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      update app_public.deposits d set revio_status = v_status where d.id = v_deposit.id;
      outcome := 'review';
    else
      v_entry := ledger.move('deposit', ledger.system_account('revio_clearing', v_deposit.currency), v_deposit.wallet_id,
                             v_deposit.amount, 'Deposit via Revio',
                             jsonb_build_object('deposit_id', v_deposit.id, 'revio_purchase_id', v_purchase_id));
      update app_public.deposits d
         set status = 'paid', credit_entry_id = v_entry, paid_at = now(), revio_status = v_status, failure_reason = null
       where d.id = v_deposit.id;
      outcome := 'applied';
      detail := 'Credited';
    end if;

  elsif v_status in ('cancelled', 'expired', 'blocked') then
    if v_deposit.status in ('pending', 'awaiting_payment') then
      update app_public.deposits d
         set status = case v_status when 'cancelled' then 'cancelled' when 'expired' then 'expired' else 'failed' end::app_public.deposit_status,
             failure_reason = case v_status when 'cancelled' then 'The payment was cancelled.'
                                            when 'expired' then 'The checkout expired before it was paid.'
                                            else 'The payment was blocked by Revio''s fraud checks.' end,
             revio_status = v_status
       where d.id = v_deposit.id;
      outcome := 'applied';
    else
      outcome := 'ignored';
      detail := format('The deposit is already %s', v_deposit.status);
    end if;

  elsif v_status in ('refunded', 'pending_refund', 'chargeback') then
    if v_deposit.status = 'paid' then
      detail := format('Revio reports the purchase %s after the wallet was credited; reverse the credit if confirmed', v_status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    else
      outcome := 'ignored';
      detail := format('The deposit is %s', v_deposit.status);
    end if;

  -- Still payable (created, sent, viewed, error: an attempt failed and the
  -- person may try again, overdue, pending_*, hold …).
  elsif v_deposit.status in ('pending', 'awaiting_payment') then
    update app_public.deposits d
       set status = 'awaiting_payment',
           checkout_url = coalesce(d.checkout_url, p_body->>'checkout_url'),
           revio_status = v_status,
           failure_reason = case when v_status = 'error' then coalesce(app_private.revio_attempt_error(p_body), 'The payment attempt failed.')
                                 else d.failure_reason end
     where d.id = v_deposit.id;
    outcome := 'applied';
  else
    outcome := 'ignored';
    detail := format('The deposit is already %s', v_deposit.status);
  end if;
end;
$$;

-- The withdrawal a payout belongs to, locked (as lock_deposit_for_purchase).
create or replace function app_private.lock_withdrawal_for_payout(p_body jsonb)
returns app_public.withdrawals
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_withdrawal app_public.withdrawals;
  v_reference text := p_body->>'reference';
begin
  select w.* into v_withdrawal from app_public.withdrawals w where w.revio_payout_id = p_body->>'id' for update;
  if v_withdrawal.id is null and v_reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select w.* into v_withdrawal from app_public.withdrawals w where w.id = v_reference::uuid for update;
  end if;
  return v_withdrawal;
end;
$$;

-- Releases a withdrawal's hold and marks it failed with a reason the person
-- sees. Only from requested or submitted; returns whether it did anything.
create or replace function app_private.fail_withdrawal(p_withdrawal_id uuid, p_reason text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_withdrawal app_public.withdrawals;
begin
  select w.* into v_withdrawal from app_public.withdrawals w where w.id = p_withdrawal_id for update;
  if v_withdrawal.id is null or v_withdrawal.status not in ('requested', 'submitted') then
    return false;
  end if;
  if exists (select from ledger.holds h where h.id = v_withdrawal.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_withdrawal.hold_id);
  end if;
  update app_public.withdrawals
     set status = 'failed', failure_reason = left(p_reason, 500), closed_at = now()
   where id = p_withdrawal_id;
  return true;
end;
$$;

-- Applies a payout snapshot to its withdrawal. Success captures the hold
-- (wallet → withdrawals in flight) and pays it out (in flight → Revio
-- clearing); failure releases the hold.
create or replace function app_private.apply_payout_event(
  p_body jsonb,
  out outcome text,
  out detail text,
  out withdrawal_id uuid
)
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_payout_id text := p_body->>'id';
  v_status text := p_body->>'status';
  v_withdrawal app_public.withdrawals := app_private.lock_withdrawal_for_payout(p_body);
  v_amount bigint := app_private.jsonb_cents(p_body #> '{payment,amount}');
  v_currency text := p_body #>> '{payment,currency}';
  v_in_flight uuid;
  v_capture uuid;
  v_payout uuid;
begin
  if v_withdrawal.id is null then
    outcome := 'unmatched';
    detail := 'No withdrawal has this payout id or reference';
    return;
  end if;
  withdrawal_id := v_withdrawal.id;

  if v_withdrawal.revio_payout_id is distinct from v_payout_id then
    if v_withdrawal.revio_payout_id is not null then
      detail := format('Revio payout %s (%s) also names this withdrawal, which is linked to payout %s; nothing applied',
                       v_payout_id, v_status, v_withdrawal.revio_payout_id);
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
      return;
    end if;
    update app_public.withdrawals w set revio_payout_id = v_payout_id where w.id = v_withdrawal.id
    returning w.* into v_withdrawal;
  end if;

  if v_status = 'success' then
    if v_withdrawal.status = 'paid' then
      outcome := 'ignored';
      detail := 'Already paid out';
    elsif v_withdrawal.status not in ('requested', 'submitted')
          or not exists (select from ledger.holds h where h.id = v_withdrawal.hold_id and h.status = 'placed') then
      detail := format('Revio reports the payout succeeded but the withdrawal is %s and its hold is closed: the money left twice or the failure was wrong',
                       v_withdrawal.status);
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    elsif v_amount is distinct from v_withdrawal.amount or v_currency is distinct from v_withdrawal.currency then
      detail := format('Revio paid out %s but the withdrawal is for %s; the hold stays until this is resolved',
                       coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'an unknown amount'),
                       app_private.format_money(v_withdrawal.amount, v_withdrawal.currency));
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    else
      v_in_flight := ledger.system_account('withdrawals_in_flight', v_withdrawal.currency);
      v_capture := ledger.capture_hold(v_withdrawal.hold_id, v_in_flight, 'withdrawal', null, 'Withdrawal to bank',
                                       jsonb_build_object('withdrawal_id', v_withdrawal.id));
      v_payout := ledger.move('payout', v_in_flight, ledger.system_account('revio_clearing', v_withdrawal.currency),
                              v_withdrawal.amount, 'Revio payout',
                              jsonb_build_object('withdrawal_id', v_withdrawal.id, 'revio_payout_id', v_payout_id));
      update app_public.withdrawals w
         set status = 'paid', capture_entry_id = v_capture, payout_entry_id = v_payout, revio_status = v_status,
             submitted_at = coalesce(w.submitted_at, now()), closed_at = now()
       where w.id = v_withdrawal.id;
      outcome := 'applied';
      detail := 'Paid out';
    end if;

  elsif v_status = 'error' then
    if app_private.fail_withdrawal(v_withdrawal.id, coalesce(app_private.revio_attempt_error(p_body), 'The bank payout failed.')) then
      update app_public.withdrawals w set revio_status = v_status where w.id = v_withdrawal.id;
      outcome := 'applied';
    elsif v_withdrawal.status = 'paid' then
      detail := 'Revio reports the payout failed after it succeeded; check with Revio and reverse if confirmed';
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    else
      outcome := 'ignored';
      detail := format('The withdrawal is already %s', v_withdrawal.status);
    end if;

  -- initialized (created) or pending (executed): the payout is at Revio.
  elsif v_withdrawal.status = 'requested' then
    update app_public.withdrawals w set status = 'submitted', submitted_at = now(), revio_status = v_status
     where w.id = v_withdrawal.id;
    outcome := 'applied';
  elsif v_withdrawal.status = 'submitted' and v_withdrawal.revio_status is distinct from v_status and v_status = 'pending' then
    update app_public.withdrawals w set revio_status = v_status where w.id = v_withdrawal.id;
    outcome := 'applied';
  else
    outcome := 'ignored';
    detail := format('The withdrawal is already %s', v_withdrawal.status);
  end if;
end;
$$;

-- The one entry point: records the delivery, deduplicates the event on
-- (object id, event type, status, updated_on), applies it, and returns the
-- outcome: applied | duplicate | ignored | unmatched | review | invalid |
-- bad_signature. A body whose signature failed is stored and nothing else:
-- it is not even parsed.
create or replace function app_private.receive_revio_event(
  p_body text,
  p_signature_ok boolean,
  p_received_at timestamptz,
  p_headers jsonb,
  p_source text default 'webhook'
)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_body jsonb;
  v_type text;
  v_id text;
  v_event text;
  v_status text;
  v_updated bigint;
  v_outcome text;
  v_detail text;
  v_deposit_id uuid;
  v_withdrawal_id uuid;
begin
  if p_signature_ok is not true then
    v_outcome := 'bad_signature';
    v_detail := 'X-Signature missing or not made by Revio''s key; nothing applied';
  else
    if pg_input_is_valid(p_body, 'jsonb') then
      v_body := p_body::jsonb;
    end if;
    if jsonb_typeof(v_body) = 'object' then
      v_type := v_body->>'type';
      v_id := v_body->>'id';
      v_event := v_body->>'event_type';
      v_status := v_body->>'status';
      v_updated := app_private.jsonb_cents(v_body->'updated_on');
    end if;
    if v_id is null or v_event is null or v_status is null or v_updated is null or v_type is null
       or length(v_id) > 100 or length(v_event) > 100 or length(v_status) > 100 or length(v_type) > 100 then
      v_outcome := 'invalid';
      v_detail := 'Not a Revio object with id, type, event_type, status and updated_on';
    else
      insert into app_private.revio_events (object_id, event_type, status, updated_on, received_at)
      values (v_id, v_event, v_status, v_updated, p_received_at)
      on conflict do nothing;
      if not found then
        v_outcome := 'duplicate';
      elsif v_type = 'purchase' then
        select r.outcome, r.detail, r.deposit_id into v_outcome, v_detail, v_deposit_id from app_private.apply_purchase_event(v_body) r;
      elsif v_type = 'payout' then
        select r.outcome, r.detail, r.withdrawal_id into v_outcome, v_detail, v_withdrawal_id from app_private.apply_payout_event(v_body) r;
      else
        v_outcome := 'unmatched';
        v_detail := format('Events about a %s are not handled', v_type);
      end if;
    end if;
  end if;

  insert into app_private.revio_deliveries (received_at, source, signature_ok, headers, body, object_type, object_id,
                                            event_type, status, updated_on, outcome, detail, deposit_id, withdrawal_id)
  values (coalesce(p_received_at, now()), coalesce(p_source, 'webhook'), coalesce(p_signature_ok, false), coalesce(p_headers, '{}'),
          p_body, v_type, v_id, v_event, v_status, v_updated, v_outcome, v_detail, v_deposit_id, v_withdrawal_id);
  return v_outcome;
end;
$$;
comment on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) is
  'Records a Revio delivery (webhook, worker or reconciliation), deduplicates it, applies the guarded transition; returns the outcome.';

revoke all on function app_private.jsonb_cents(jsonb) from public;
revoke all on function app_private.revio_attempt_error(jsonb) from public;
revoke all on function app_private.flag_payment(text, uuid, text) from public;
revoke all on function app_private.lock_deposit_for_purchase(jsonb) from public;
revoke all on function app_private.apply_purchase_event(jsonb) from public;
revoke all on function app_private.lock_withdrawal_for_payout(jsonb) from public;
revoke all on function app_private.fail_withdrawal(uuid, text) from public;
revoke all on function app_private.apply_payout_event(jsonb) from public;
revoke all on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) from public;
-- The webhook route calls it as the API's login role, without switching role.
grant execute on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) to authenticator;
--! EndIncluded payments/revio_events.sql
--! Included payments/jobs.sql
-- What the Revio tasks (src/worker/tasks/revio-*.ts) read and write besides
-- receive_revio_event. The worker connects as the owner; nothing here is
-- granted to the API's roles.

-- A deposit as revio.create_purchase needs it.
create or replace function app_private.deposit_for_purchase(p_deposit_id uuid)
returns table (
  id uuid, status app_public.deposit_status, amount bigint, currency char(3), email text, full_name text,
  revio_purchase_id text, purchase_requested_at timestamptz
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select d.id, d.status, d.amount, d.currency, u.email::text, u.full_name, d.revio_purchase_id, d.purchase_requested_at
    from app_public.deposits d
    join app_public.users u on u.id = d.user_id
   where d.id = p_deposit_id;
$$;

-- A withdrawal as revio.create_payout needs it, with the encrypted account number.
create or replace function app_private.withdrawal_for_payout(p_withdrawal_id uuid)
returns table (
  id uuid, user_id uuid, status app_public.withdrawal_status, amount bigint, currency char(3), email text, full_name text,
  revio_payout_id text, payout_requested_at timestamptz, account_holder text, bank_name text, branch_code text,
  account_type text, account_number_ciphertext bytea
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select w.id, w.user_id, w.status, w.amount, w.currency, u.email::text, u.full_name, w.revio_payout_id, w.payout_requested_at,
         b.account_holder, b.bank_name, b.branch_code, b.account_type::text, n.ciphertext
    from app_public.withdrawals w
    join app_public.users u on u.id = w.user_id
    join app_public.bank_accounts b on b.id = w.bank_account_id
    join app_private.bank_account_numbers n on n.bank_account_id = b.id
   where w.id = p_withdrawal_id;
$$;

-- Written (and committed) just before the create call to Revio: from then on
-- a retry must look our reference up before creating again.
create or replace function app_private.mark_revio_requested(p_kind text, p_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_kind = 'deposit' then
    update app_public.deposits set purchase_requested_at = coalesce(purchase_requested_at, now()) where id = p_id;
  elsif p_kind = 'withdrawal' then
    update app_public.withdrawals set payout_requested_at = coalesce(payout_requested_at, now()) where id = p_id;
  else
    raise exception 'mark_revio_requested: unknown kind %', p_kind;
  end if;
end;
$$;

-- Revio refused to create the purchase (a final 4xx): the deposit fails with
-- a reason the person sees. Only from pending.
create or replace function app_private.fail_deposit(p_deposit_id uuid, p_reason text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update app_public.deposits set status = 'failed', failure_reason = left(p_reason, 500)
   where id = p_deposit_id and status = 'pending';
  return found;
end;
$$;

revoke all on function app_private.deposit_for_purchase(uuid) from public;
revoke all on function app_private.withdrawal_for_payout(uuid) from public;
revoke all on function app_private.mark_revio_requested(text, uuid) from public;
revoke all on function app_private.fail_deposit(uuid, text) from public;
--! EndIncluded payments/jobs.sql
--! Included payments/reconciliation.sql
-- Reconciliation. revio.reconcile_pending (cron) asks Revio about deposits
-- and withdrawals still open after a while and feeds each answer through
-- receive_revio_event, exactly like a webhook; revio.reconcile_daily reads
-- back recent objects and records every difference between Revio's view and
-- the ledger's Revio clearing account in app_private.revio_discrepancies
-- (audit.revio_discrepancies).

-- Open deposits and withdrawals that Revio knows about and that nobody has
-- asked about for p_min_age: the oldest first.
create or replace function app_private.revio_objects_to_reconcile(p_min_age interval, p_limit int default 100)
returns table (kind text, id uuid, revio_id text)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  (select 'deposit', d.id, d.revio_purchase_id
     from app_public.deposits d
    where d.status in ('pending', 'awaiting_payment') and d.revio_purchase_id is not null
      and coalesce(d.reconciled_at, d.created_at) <= now() - p_min_age
    order by coalesce(d.reconciled_at, d.created_at)
    limit p_limit)
  union all
  (select 'withdrawal', w.id, w.revio_payout_id
     from app_public.withdrawals w
    where w.status in ('requested', 'submitted') and w.revio_payout_id is not null
      and coalesce(w.reconciled_at, w.created_at) <= now() - p_min_age
    order by coalesce(w.reconciled_at, w.created_at)
    limit p_limit);
$$;

-- Applies what Revio says about one object (through receive_revio_event, as
-- a webhook would be) and notes that it was asked. Returns the outcome.
create or replace function app_private.reconcile_revio_object(p_kind text, p_id uuid, p_body text)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_outcome text := app_private.receive_revio_event(p_body, true, now(), '{}', 'reconciliation');
begin
  if p_kind = 'deposit' then
    update app_public.deposits set reconciled_at = now() where id = p_id;
  else
    update app_public.withdrawals set reconciled_at = now() where id = p_id;
  end if;
  return v_outcome;
end;
$$;

-- Every deposit and withdrawal linked to a Revio object and created since
-- p_since: what the daily check reads back from Revio.
create or replace function app_private.revio_objects_for_daily_check(p_since timestamptz)
returns table (kind text, id uuid, revio_id text)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select 'deposit', d.id, d.revio_purchase_id from app_public.deposits d
   where d.revio_purchase_id is not null and d.created_at >= p_since
  union all
  select 'withdrawal', w.id, w.revio_payout_id from app_public.withdrawals w
   where w.revio_payout_id is not null and w.created_at >= p_since;
$$;

-- Compares Revio's answers (p_observations: [{kind, id, found, status,
-- amount, currency}], one per object of revio_objects_for_daily_check) with
-- the ledger, writes each difference not already open, and returns how many
-- it wrote. Kinds: missing_at_revio, paid_not_credited, credited_not_paid,
-- payout_not_recorded, paid_out_not_confirmed, amount_differs, clearing_total
-- (per currency, Revio's net for these objects against the clearing
-- postings of their entries) and clearing_unexplained (the clearing
-- account's whole balance against every credited deposit and paid
-- withdrawal).
create or replace function app_private.record_revio_reconciliation(p_observations jsonb)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run_id uuid;
  v_count int;
begin
  insert into app_private.reconciliation_runs (kind, objects) values ('daily', jsonb_array_length(p_observations))
  returning id into v_run_id;

  with obs as (
    select o->>'kind' as kind, (o->>'id')::uuid as id, coalesce((o->>'found')::boolean, false) as is_found,
           o->>'status' as status, app_private.jsonb_cents(o->'amount') as amount, o->>'currency' as currency
      from jsonb_array_elements(p_observations) o
  ), ours as (
    -- Each object as the ledger sees it: the amount its entry moved through clearing.
    select obs.*, d.revio_purchase_id as revio_id, d.currency as our_currency, d.amount as our_amount,
           d.status::text as our_status, d.status = 'paid' as settled,
           obs.status in ('paid', 'cleared', 'settled', 'refunded', 'pending_refund', 'chargeback') as revio_settled,
           -(select p.amount from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id = d.credit_entry_id and a.kind = 'revio_clearing') as ledger_net
      from obs join app_public.deposits d on d.id = obs.id where obs.kind = 'deposit'
    union all
    select obs.*, w.revio_payout_id, w.currency, w.amount, w.status::text, w.status = 'paid',
           obs.status = 'success',
           -(select p.amount from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id = w.payout_entry_id and a.kind = 'revio_clearing')
      from obs join app_public.withdrawals w on w.id = obs.id where obs.kind = 'withdrawal'
  ), checked as (
    select o.kind, o.id, o.revio_id, o.our_currency as currency, coalesce(o.ledger_net, 0) as ledger_amount,
           case when o.revio_settled then case o.kind when 'deposit' then o.amount else -o.amount end else 0 end as revio_amount,
           case
             when not o.is_found then 'missing_at_revio'
             when o.revio_settled and not o.settled then case o.kind when 'deposit' then 'paid_not_credited' else 'payout_not_recorded' end
             when o.settled and not o.revio_settled then case o.kind when 'deposit' then 'credited_not_paid' else 'paid_out_not_confirmed' end
             when o.settled and (o.amount is distinct from o.our_amount or o.currency is distinct from o.our_currency) then 'amount_differs'
           end as problem,
           format('Revio: %s %s; pgwallet: %s %s', coalesce(o.status, 'not found'),
                  coalesce(app_private.format_money(o.amount, coalesce(o.currency, '???')), ''),
                  o.our_status, app_private.format_money(o.our_amount, o.our_currency)) as detail
      from ours o
  ), per_object as (
    select f.problem as kind, case f.kind when 'deposit' then 'purchase' else 'payout' end as object_type, f.revio_id as object_id,
           case f.kind when 'deposit' then f.id end as deposit_id, case f.kind when 'withdrawal' then f.id end as withdrawal_id,
           f.currency, f.ledger_amount, f.revio_amount, f.detail
      from checked f where f.problem is not null
  ), totals as (
    select 'clearing_total' as kind, null::text as object_type, null::text as object_id, null::uuid as deposit_id,
           null::uuid as withdrawal_id, f.currency, sum(f.ledger_amount)::bigint as ledger_amount,
           sum(f.revio_amount)::bigint as revio_amount,
           format('For the %s objects checked, Revio''s net is %s and the clearing postings net %s', count(*),
                  app_private.format_money(sum(f.revio_amount)::bigint, f.currency),
                  app_private.format_money(sum(f.ledger_amount)::bigint, f.currency)) as detail
      from checked f group by f.currency having sum(f.ledger_amount) <> sum(f.revio_amount)
  ), unexplained as (
    select 'clearing_unexplained', null::text, null::text, null::uuid, null::uuid, c.currency,
           -c.balance as ledger_amount, coalesce(e.expected, 0) as revio_amount,
           format('The Revio clearing account holds %s but credited deposits less paid withdrawals come to %s',
                  app_private.format_money(-c.balance, c.currency), app_private.format_money(coalesce(e.expected, 0), c.currency))
      from (select a.currency, sum(a.balance)::bigint as balance from ledger.accounts a
             where a.kind = 'revio_clearing' group by a.currency) c
      left join (select x.currency, sum(x.amount)::bigint as expected from (
                   select d.currency, d.amount from app_public.deposits d where d.status = 'paid'
                   union all
                   select w.currency, -w.amount from app_public.withdrawals w where w.status = 'paid') x
                  group by x.currency) e on e.currency = c.currency
     where -c.balance <> coalesce(e.expected, 0)
  ), everything as (
    select * from per_object union all select * from totals union all select * from unexplained
  )
  insert into app_private.revio_discrepancies (run_id, kind, object_type, object_id, deposit_id, withdrawal_id, currency,
                                               ledger_amount, revio_amount, detail)
  select v_run_id, e.kind, e.object_type, e.object_id, e.deposit_id, e.withdrawal_id, e.currency, e.ledger_amount, e.revio_amount, e.detail
    from everything e
   where not exists (select from app_private.revio_discrepancies r
                      where r.resolved_at is null and r.kind = e.kind
                        and r.object_id is not distinct from e.object_id and r.currency is not distinct from e.currency
                        and r.ledger_amount is not distinct from e.ledger_amount and r.revio_amount is not distinct from e.revio_amount);
  get diagnostics v_count = row_count;
  update app_private.reconciliation_runs set discrepancies = v_count where id = v_run_id;
  return v_count;
end;
$$;

revoke all on function app_private.revio_objects_to_reconcile(interval, int) from public;
revoke all on function app_private.reconcile_revio_object(text, uuid, text) from public;
revoke all on function app_private.revio_objects_for_daily_check(timestamptz) from public;
revoke all on function app_private.record_revio_reconciliation(jsonb) from public;
--! EndIncluded payments/reconciliation.sql
--! Included payments/policies.sql
-- Who sees what of deposits, bank accounts and withdrawals: each person their
-- own rows, through the columns granted below (so Revio ids, idempotency
-- bookkeeping and the reasons meant for staff stay out of the API). Rows are
-- written only by the SECURITY DEFINER functions.

alter table app_public.deposits enable row level security;
drop policy if exists select_own on app_public.deposits;
create policy select_own on app_public.deposits
  for select to app_user
  using (user_id = (select app_public.current_user_id()));

alter table app_public.bank_accounts enable row level security;
drop policy if exists select_own on app_public.bank_accounts;
create policy select_own on app_public.bank_accounts
  for select to app_user
  using (user_id = (select app_public.current_user_id()));

alter table app_public.withdrawals enable row level security;
drop policy if exists select_own on app_public.withdrawals;
create policy select_own on app_public.withdrawals
  for select to app_user
  using (user_id = (select app_public.current_user_id()));

revoke all on app_public.deposits, app_public.bank_accounts, app_public.withdrawals
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
grant select (id, wallet_id, amount, currency, status, idempotency_key, checkout_url, failure_reason, needs_attention,
              created_at, updated_at, paid_at)
  on app_public.deposits to app_user;
grant select (id, account_holder, bank_name, branch_code, account_type, account_number_last4, created_at)
  on app_public.bank_accounts to app_user;
grant select (id, wallet_id, bank_account_id, amount, currency, status, idempotency_key, failure_reason, needs_attention,
              created_at, updated_at, submitted_at, closed_at)
  on app_public.withdrawals to app_user;

revoke all on app_private.bank_account_numbers, app_private.revio_events, app_private.revio_deliveries,
              app_private.revio_discrepancies, app_private.reconciliation_runs
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;

comment on table app_public.deposits is
  E'@behavior -insert -update -delete\nMoney paid into a wallet through Revio''s checkout (createDeposit). Amounts are in minor units.';
comment on constraint deposits_idempotency on app_public.deposits is '@behavior -single';
comment on constraint deposits_revio_purchase_id_key on app_public.deposits is '@behavior -single';
comment on constraint deposits_credit_entry_id_key on app_public.deposits is '@behavior -single';
comment on column app_public.deposits.wallet_id is E'@behavior -filterBy -orderBy\nThe wallet the money goes to.';
comment on column app_public.deposits.amount is E'@behavior -filterBy -orderBy\nMinor units (cents).';
comment on column app_public.deposits.status is
  'pending until Revio''s checkout exists, awaiting_payment while the person can pay at checkoutUrl, then paid (the wallet is credited), failed, cancelled or expired.';
comment on column app_public.deposits.idempotency_key is E'@behavior -filterBy -orderBy\nThe key the deposit was created with.';
comment on column app_public.deposits.checkout_url is E'@behavior -filterBy -orderBy\nRevio''s hosted checkout page: send the person here to pay. Set shortly after creation.';
comment on column app_public.deposits.failure_reason is E'@behavior -filterBy -orderBy\nWhy the deposit failed, or why the last payment attempt failed.';
comment on column app_public.deposits.needs_attention is E'@behavior -filterBy -orderBy\nTrue when our staff has to look at this deposit (it is not stuck silently).';
comment on column app_public.deposits.paid_at is E'@behavior -filterBy\nWhen the wallet was credited.';

comment on table app_public.bank_accounts is
  E'@behavior -insert -update -delete\nA bank account you can withdraw to (addBankAccount). Only the last 4 digits of the account number are ever shown.';
comment on column app_public.bank_accounts.account_number_last4 is E'@behavior -filterBy -orderBy\nThe last 4 digits of the account number; the full number is stored encrypted.';

comment on table app_public.withdrawals is
  E'@behavior -insert -update -delete\nMoney paid out of a wallet to a bank account through Revio (requestWithdrawal).';
comment on constraint withdrawals_idempotency on app_public.withdrawals is '@behavior -single';
comment on constraint withdrawals_revio_payout_id_key on app_public.withdrawals is '@behavior -single';
comment on constraint withdrawals_hold_id_key on app_public.withdrawals is '@behavior -single';
comment on constraint withdrawals_capture_entry_id_key on app_public.withdrawals is '@behavior -single';
comment on constraint withdrawals_payout_entry_id_key on app_public.withdrawals is '@behavior -single';
comment on column app_public.withdrawals.wallet_id is E'@behavior -filterBy -orderBy\nThe wallet the money comes from.';
comment on column app_public.withdrawals.amount is E'@behavior -filterBy -orderBy\nMinor units (cents).';
comment on column app_public.withdrawals.status is
  'requested (the amount is held), submitted (the payout is at Revio), then paid, or failed with failureReason (the hold is released).';
comment on column app_public.withdrawals.idempotency_key is E'@behavior -filterBy -orderBy\nThe key the withdrawal was requested with.';
comment on column app_public.withdrawals.failure_reason is E'@behavior -filterBy -orderBy\nWhy the withdrawal failed, in words for the account holder.';
comment on column app_public.withdrawals.needs_attention is E'@behavior -filterBy -orderBy\nTrue when our staff has to look at this withdrawal (it is not stuck silently).';
--! EndIncluded payments/policies.sql
--! Included audit/payments.sql
-- Read-only views of the payment flows for DBAs and auditors (app_auditor).
-- docs/runbook-payments.md says what each should show and what to do.

-- Every Revio delivery with its outcome, newest first when ordered by id.
create or replace view audit.revio_webhook_log as
  select d.id, d.received_at, d.source, d.signature_ok, d.object_type, d.object_id, d.event_type, d.status,
         d.updated_on, d.outcome, d.detail, d.deposit_id, d.withdrawal_id, d.headers, d.body
    from app_private.revio_deliveries d;

-- Events about objects that are neither our deposits nor our withdrawals.
create or replace view audit.unmatched_revio_events as
  select d.id, d.received_at, d.source, d.object_type, d.object_id, d.event_type, d.status, d.detail, d.body
    from app_private.revio_deliveries d
   where d.outcome = 'unmatched';

-- Deposits and withdrawals a person must look at: retries exhausted, amount
-- mismatch, payment after closing, a second Revio object, …
create or replace view audit.payments_needing_attention as
  select 'deposit' as kind, d.id, u.email as owner_email, d.status::text, d.amount, d.currency, d.revio_purchase_id as revio_id,
         d.attention_reason, d.created_at, d.updated_at
    from app_public.deposits d join app_public.users u on u.id = d.user_id
   where d.needs_attention
  union all
  select 'withdrawal', w.id, u.email, w.status::text, w.amount, w.currency, w.revio_payout_id,
         w.attention_reason, w.created_at, w.updated_at
    from app_public.withdrawals w join app_public.users u on u.id = w.user_id
   where w.needs_attention;

-- Jobs that used up their attempts (graphile-worker keeps them): the dead
-- letters, with the last error and the deposit or withdrawal they were for.
-- A function, because graphile_worker's schema is installed by the worker
-- after the migrations (src/worker/runner.ts).
create or replace function audit.dead_jobs()
returns table (job_id bigint, task text, job_key text, attempts int, max_attempts int, last_error text,
               failed_at timestamptz, deposit_id uuid, withdrawal_id uuid, payment_status text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('graphile_worker.jobs') is null then
    return;
  end if;
  return query
    select j.id, j.task_identifier, j.key, j.attempts::int, j.max_attempts::int, j.last_error, j.updated_at,
           d.id, w.id, coalesce(d.status::text, w.status::text)
      from graphile_worker.jobs j
      left join app_public.deposits d on j.key like 'deposit:%' and d.id::text = substr(j.key, 9)
      left join app_public.withdrawals w on j.key like 'withdrawal:%' and w.id::text = substr(j.key, 12)
     where j.attempts >= j.max_attempts and j.locked_at is null
     order by j.updated_at desc;
end;
$$;
create or replace view audit.dead_jobs as select * from audit.dead_jobs();

-- Differences between Revio and the ledger found by the daily reconciliation
-- (revio.reconcile_daily) and not yet marked resolved.
create or replace view audit.revio_discrepancies as
  select r.id, r.found_at, r.kind, r.object_type, r.object_id, r.deposit_id, r.withdrawal_id, r.currency,
         r.ledger_amount, r.revio_amount, r.detail, r.run_id
    from app_private.revio_discrepancies r
   where r.resolved_at is null;

revoke all on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
              audit.dead_jobs, audit.revio_discrepancies from public;
grant select on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
                audit.dead_jobs, audit.revio_discrepancies to app_auditor;
revoke all on function audit.dead_jobs() from public;
grant execute on function audit.dead_jobs() to app_auditor;
--! EndIncluded audit/payments.sql

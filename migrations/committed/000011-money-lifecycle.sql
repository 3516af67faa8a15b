--! Previous: sha1:e7d2214a43c6459861dc6064b2f391d21d42f13c
--! Hash: sha1:208087a4d86238e28d3d3ddec4e6b81a72155752
--! Message: money lifecycle

-- ==== lifecycle ====
-- Money lifecycle (issue 10): clearing holds on fresh deposit credits,
-- refunds, chargebacks and provider-initiated refunds, cancellations,
-- provider fees. New enum values are used only inside plpgsql bodies (they
-- cannot be used in this transaction otherwise).
alter type ledger.account_kind add value if not exists 'provider_fees';
alter type ledger.account_kind add value if not exists 'chargeback_receivable';
alter type ledger.entry_kind add value if not exists 'refund';
alter type ledger.entry_kind add value if not exists 'chargeback';
alter type app_public.withdrawal_status add value if not exists 'cancelled';

-- Clearing: the credited amount stays held until clears_at (or Revio's
-- `settled`); cleared_at is when the hold was released.
alter table app_public.deposits add column if not exists clearing_hold_id uuid references ledger.holds;
alter table app_public.deposits add column if not exists clears_at timestamptz;
alter table app_public.deposits add column if not exists cleared_at timestamptz;
-- What has gone back out of this deposit: our refunds and Revio's reversals.
alter table app_public.deposits add column if not exists refunded_amount bigint not null default 0;
alter table app_public.deposits add column if not exists reversed_amount bigint not null default 0;
-- Revio's fee for the purchase (reported, or from the fee schedule), booked to provider_fees.
alter table app_public.deposits add column if not exists fee_amount bigint;
alter table app_public.deposits add column if not exists fee_entry_id uuid references ledger.entries;
alter table app_public.deposits add column if not exists cancelled_at timestamptz;
create index if not exists deposits_clearing_idx on app_public.deposits (clears_at) where cleared_at is null and clearing_hold_id is not null;
alter table app_public.withdrawals add column if not exists fee_amount bigint;
alter table app_public.withdrawals add column if not exists fee_entry_id uuid references ledger.entries;

do $$ begin
  -- Refund: requested (held) → submitted (at Revio) → succeeded (debited) | failed (released).
  create type app_public.refund_status as enum ('requested', 'submitted', 'succeeded', 'failed');
exception when duplicate_object then null; end $$;

create table if not exists app_public.refunds (
  id                  uuid primary key default uuidv7(),
  deposit_id          uuid not null references app_public.deposits on delete restrict,
  user_id             uuid not null references app_public.users on delete restrict,
  wallet_id           uuid not null references ledger.accounts,
  amount              bigint not null check (amount > 0),
  currency            char(3) not null references ledger.currencies,
  reason              text not null check (length(reason) between 1 and 500),
  requested_by        uuid not null references app_public.users on delete restrict,
  by_admin            boolean not null default false,
  idempotency_key     text not null check (length(idempotency_key) between 1 and 200),
  status              app_public.refund_status not null default 'requested',
  hold_id             uuid references ledger.holds,
  -- Revio's refundable_amount just before our refund call: a retry compares
  -- it with the purchase's current one to learn whether the call got through.
  refundable_before   bigint,
  refund_requested_at timestamptz,
  revio_payment_id    text unique,
  revio_status        text,
  debit_entry_id      uuid references ledger.entries,
  failure_reason      text,
  needs_attention     boolean not null default false,
  attention_reason    text,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  closed_at           timestamptz,
  constraint refunds_idempotency unique (requested_by, idempotency_key),
  constraint refunds_succeeded_iff_debited check ((status = 'succeeded') = (debit_entry_id is not null))
);
create index if not exists refunds_deposit_idx on app_public.refunds (deposit_id);
create index if not exists refunds_user_idx on app_public.refunds (user_id, created_at desc);
-- One refund at a time per deposit: the lookup before a retried call reads
-- the purchase's refundable amount, which two refunds in flight would blur.
create unique index if not exists refunds_one_open_idx on app_public.refunds (deposit_id) where status in ('requested', 'submitted');
drop trigger if exists _100_timestamps on app_public.refunds;
create trigger _100_timestamps before insert or update on app_public.refunds
  for each row execute function app_private.tg__timestamps();

-- Chargebacks and refunds Revio made without us, after the wallet was
-- credited: the wallet is debited what it has, the rest is booked to the
-- chargeback_receivable account (never a silent negative balance), and
-- withdrawals from the wallet stop until an admin reviews it.
create table if not exists app_public.reversals (
  id                uuid primary key default uuidv7(),
  deposit_id        uuid not null references app_public.deposits on delete restrict,
  user_id           uuid not null references app_public.users on delete restrict,
  wallet_id         uuid not null references ledger.accounts,
  kind              text not null check (kind in ('chargeback', 'provider_refund')),
  revio_payment_id  text not null unique,
  amount            bigint not null check (amount > 0),
  currency          char(3) not null references ledger.currencies,
  debited_amount    bigint not null check (debited_amount >= 0),
  receivable_amount bigint not null check (receivable_amount >= 0),
  entry_id          uuid not null references ledger.entries,
  reviewed_at       timestamptz,
  reviewed_by       uuid references app_public.users,
  review_note       text,
  created_at        timestamptz not null default now(),
  constraint reversals_split check (debited_amount + receivable_amount = amount)
);
create index if not exists reversals_wallet_open_idx on app_public.reversals (wallet_id) where reviewed_at is null;
create index if not exists reversals_deposit_idx on app_public.reversals (deposit_id);

--! Included payments/settings.sql
-- Payment limits and job settings. The API passes the configured values
-- (DEPOSIT_MIN_CENTS …, see README) to every signed-in request as
-- pgwallet.* settings, and sets them on the connections of the webhook route
-- and the worker (src/db/pools.ts), so credits made by a webhook follow the
-- same clearing and fee rules; these defaults apply when a setting is absent
-- (direct SQL) and equal the environment's defaults.

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
      when 'deposit_clearing_seconds' then 259200     -- 72 h: card payments settle in 2 to 3 days
      when 'refund_user_window_seconds' then 604800   -- people may refund their own deposit for 7 days
      when 'revio_fee_bps' then 0                     -- fee schedule when Revio reports no fee: basis points …
      when 'revio_fee_fixed_cents' then 0             -- … plus a fixed amount per payment
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
  -- An unverified account may deposit but not take money out (issue 9 §4).
  if not exists (select from app_public.users u where u.id = p_caller and u.email_verified_at is not null) then
    raise exception 'Verify your email address before withdrawing' using errcode = 'PW008'; -- EMAIL_NOT_VERIFIED
  end if;
  -- A chargeback or reversal on this wallet waits for an admin's review (chargebacks.sql).
  perform app_private.assert_no_open_reversal(v_wallet.id);
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
   where w.wallet_id = v_wallet.id and w.created_at > now() - interval '24 hours' and w.status not in ('failed', 'cancelled');
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
  'with `failureReason` (the hold is then released); `cancelWithdrawal` can stop it while it is still `requested`. '
  'Limits per withdrawal and per 24 hours are configured on the server. '
  'Repeating a request with the same `idempotencyKey` returns the first withdrawal.';

revoke all on function app_private.request_withdrawal(uuid, uuid, bigint, uuid, text) from public;
revoke all on function app_public.request_withdrawal(uuid, bigint, uuid, text) from public;
grant execute on function app_public.request_withdrawal(uuid, bigint, uuid, text) to app_user;
--! EndIncluded payments/withdrawals.sql
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
-- a retry must look our reference up before creating again. PAYMENT_CLOSED
-- when the deposit or withdrawal was cancelled first.
create or replace function app_private.mark_revio_requested(p_kind text, p_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A deposit or withdrawal cancelled meanwhile is not sent to Revio: the
  -- cancel and this mark lock the same row, so exactly one of them wins.
  if p_kind = 'deposit' then
    update app_public.deposits set purchase_requested_at = coalesce(purchase_requested_at, now())
     where id = p_id and status = 'pending';
  elsif p_kind = 'withdrawal' then
    update app_public.withdrawals set payout_requested_at = coalesce(payout_requested_at, now())
     where id = p_id and status in ('requested', 'submitted');
  else
    raise exception 'mark_revio_requested: unknown kind %', p_kind;
  end if;
  if not found then
    raise exception '% % is closed (cancelled or settled); nothing is sent to Revio', p_kind, p_id using errcode = 'PW325'; -- PAYMENT_CLOSED
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
  elsif p_kind = 'refund' then
    update app_public.refunds set needs_attention = true, attention_reason = left(p_reason, 1000) where id = p_id;
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

-- Credits a deposit (Revio clearing → wallet), books Revio's fee for it and
-- starts clearing: the credit is held until it clears (clearing.sql).
create or replace function app_private.credit_deposit(p_deposit_id uuid, p_purchase_id text, p_status text, p_body jsonb)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_entry uuid;
  v_fee bigint;
  v_fee_entry uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  v_entry := ledger.move('deposit', ledger.system_account('revio_clearing', v_deposit.currency), v_deposit.wallet_id,
                         v_deposit.amount, 'Deposit via Revio',
                         jsonb_build_object('deposit_id', v_deposit.id, 'revio_purchase_id', p_purchase_id));
  v_fee := app_private.revio_fee(p_body->'payment', v_deposit.amount);
  v_fee_entry := app_private.book_provider_fee(v_deposit.currency, v_fee, 'Revio fee for deposit ' || v_deposit.id,
                                               jsonb_build_object('deposit_id', v_deposit.id, 'revio_purchase_id', p_purchase_id));
  update app_public.deposits d
     set status = 'paid', credit_entry_id = v_entry, paid_at = now(), revio_status = p_status, failure_reason = null,
         fee_amount = v_fee, fee_entry_id = v_fee_entry
   where d.id = v_deposit.id;
  perform app_private.start_clearing(v_deposit.id, v_deposit.amount);
  if p_status = 'settled' then
    perform app_private.release_cleared_deposits(v_deposit.id, true);
  end if;
  return v_entry;
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
  v_event text := p_body->>'event_type';
  v_refund app_public.refunds;
  v_refundable bigint;
  v_was text;
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

  if v_event = 'purchase.refund_failure' then
    -- Revio could not refund: our open refund (if any) fails and its hold is released.
    select r.* into v_refund from app_public.refunds r
     where r.deposit_id = v_deposit.id and r.status in ('requested', 'submitted') for update;
    if v_refund.id is not null then
      perform app_private.fail_refund(v_refund.id, coalesce(app_private.revio_attempt_error(p_body), 'Revio could not refund the payment.'));
      update app_public.refunds r set revio_status = v_status where r.id = v_refund.id;
      outcome := 'applied';
      detail := 'Refund failed at Revio; the hold is released';
    else
      outcome := 'ignored';
      detail := 'No refund of this deposit is open';
    end if;

  elsif v_status in ('paid', 'cleared', 'settled') then
    if v_deposit.status = 'paid' then
      if v_status = 'settled' and v_deposit.cleared_at is null and v_deposit.clearing_hold_id is not null then
        perform app_private.release_cleared_deposits(v_deposit.id, true);
        outcome := 'applied';
        detail := 'Settled at Revio: the credit is available';
      else
        outcome := 'ignored';
        detail := 'Already credited';
      end if;
    elsif v_amount is distinct from v_deposit.amount or v_currency is distinct from v_deposit.currency then
      detail := format('Revio reports %s paid but the deposit is for %s; not credited',
                       coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'an unknown amount'),
                       app_private.format_money(v_deposit.amount, v_deposit.currency));
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      update app_public.deposits d set revio_status = v_status where d.id = v_deposit.id;
      outcome := 'review';
    else
      -- Money that reached Revio is never lost: a payment that beat a cancel
      -- (or arrived after expiry or a refused create) is credited too, and flagged.
      v_was := v_deposit.status::text;
      perform app_private.credit_deposit(v_deposit.id, v_purchase_id, v_status, p_body);
      if v_was in ('pending', 'awaiting_payment') then
        outcome := 'applied';
        detail := 'Credited';
      else
        detail := format('Revio reports the purchase %s after the deposit was %s: credited anyway, since the money is at Revio; '
                         'refund it (refundDeposit) if the person did not mean to pay', v_status, v_was);
        perform app_private.flag_payment('deposit', v_deposit.id, detail);
        outcome := 'review';
      end if;
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
      update app_public.deposits d set revio_status = v_status where d.id = v_deposit.id and d.status = 'cancelled';
      outcome := 'ignored';
      detail := format('The deposit is already %s', v_deposit.status);
    end if;

  elsif v_status in ('refunded', 'pending_refund', 'chargeback') then
    select r.* into v_refund from app_public.refunds r
     where r.deposit_id = v_deposit.id and r.status in ('requested', 'submitted') for update;
    v_refundable := app_private.jsonb_cents(p_body->'refundable_amount');
    if v_deposit.status <> 'paid' then
      outcome := 'ignored';
      detail := format('The deposit is %s: nothing was credited, so nothing is taken back', v_deposit.status);
    elsif v_status = 'pending_refund' and v_refund.id is not null then
      update app_public.refunds r set status = 'submitted', revio_status = v_status where r.id = v_refund.id;
      outcome := 'applied';
      detail := 'Refund under way at Revio';
    elsif v_status = 'refunded' and v_refund.id is not null and v_refund.refundable_before is not null
          and v_refundable <= v_refund.refundable_before - v_refund.amount then
      -- Read back after our call: the refundable amount dropped by ours.
      perform app_private.succeed_refund(v_refund.id, null, v_status);
      outcome := 'applied';
      detail := 'Refund confirmed by the purchase''s refundable amount; the wallet is debited';
    elsif v_status in ('refunded', 'chargeback')
          and v_refundable is not distinct from v_deposit.amount - v_deposit.refunded_amount - v_deposit.reversed_amount
          and v_deposit.refunded_amount + v_deposit.reversed_amount > 0 then
      outcome := 'ignored';
      detail := 'Every refund and chargeback of this purchase is already applied';
    elsif v_status = 'pending_refund' then
      outcome := 'ignored';
      detail := 'Revio is refunding the purchase; the debit follows with its payment.refunded';
    else
      detail := format('Revio reports the purchase %s but no matching refund or chargeback payment was applied yet; '
                       'expect payment.refunded / payment.charged_back, or check Revio', v_status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    end if;

  -- A payable purchase of a deposit the person cancelled (the cancel raced
  -- the create, or its job has not run yet): have it cancelled at Revio.
  elsif v_deposit.status = 'cancelled' and v_deposit.cancelled_at is not null
        and v_status in ('created', 'sent', 'viewed', 'error', 'overdue', 'pending_execute', 'pending_charge') then
    perform app_private.queue_revio_job('revio.cancel_purchase', 'deposit-cancel:' || v_deposit.id,
                                        json_build_object('deposit_id', v_deposit.id));
    outcome := 'applied';
    detail := 'The deposit was cancelled: the purchase is being cancelled at Revio';

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
  v_fee bigint;
  v_fee_entry uuid;
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
      -- Only a fee Revio reports is booked for payouts (the schedule is for purchases).
      v_fee := coalesce(app_private.jsonb_cents(p_body #> '{payment,fee_amount}'), 0);
      v_fee_entry := app_private.book_provider_fee(v_withdrawal.currency, v_fee, 'Revio fee for withdrawal ' || v_withdrawal.id,
                                                   jsonb_build_object('withdrawal_id', v_withdrawal.id, 'revio_payout_id', v_payout_id));
      update app_public.withdrawals w
         set status = 'paid', capture_entry_id = v_capture, payout_entry_id = v_payout, revio_status = v_status,
             fee_amount = v_fee, fee_entry_id = v_fee_entry,
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

-- The longest prefix of p_text that is at most p_bytes bytes of UTF-8 (never
-- cutting a character in two).
create or replace function app_private.utf8_prefix(p_text text, p_bytes int)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v text := left(p_text, p_bytes);
begin
  while octet_length(v) > p_bytes loop
    v := left(v, length(v) - greatest(1, (octet_length(v) - p_bytes) / 4));
  end loop;
  return v;
end;
$$;

-- Applies a Payment object (a refund or chargeback of one of our purchases,
-- `related_to` naming it): confirms our open refund of that amount, or, when
-- none matches, takes the money back as a reversal (chargebacks.sql).
create or replace function app_private.apply_payment_event(
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
  v_payment_id text := p_body->>'id';
  v_event text := p_body->>'event_type';
  v_payment_type text := coalesce(p_body->>'payment_type', p_body #>> '{payment,payment_type}');
  v_purchase_id text := p_body #>> '{related_to,id}';
  v_amount bigint := coalesce(app_private.jsonb_cents(p_body->'amount'), app_private.jsonb_cents(p_body #> '{payment,amount}'));
  v_currency text := coalesce(p_body->>'currency', p_body #>> '{payment,currency}');
  v_deposit app_public.deposits;
  v_refund app_public.refunds;
  v_left bigint;
  v_kind text;
begin
  select d.* into v_deposit from app_public.deposits d where d.revio_purchase_id = v_purchase_id for update;
  if v_deposit.id is null then
    outcome := 'unmatched';
    detail := 'No deposit has the purchase this payment is related to';
    return;
  end if;
  deposit_id := v_deposit.id;

  if v_event = 'payment.chargeback_reversed' then
    detail := format('Revio reversed a chargeback (payment %s, %s): check with Revio and credit the wallet back with an adjustment',
                     v_payment_id, coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'unknown amount'));
    perform app_private.flag_payment('deposit', v_deposit.id, detail);
    outcome := 'review';
    return;
  end if;
  if v_event = 'payment.refunded' or v_payment_type = 'refund' then
    v_kind := 'provider_refund';
  elsif v_event = 'payment.charged_back' or v_payment_type = 'chargeback' then
    v_kind := 'chargeback';
  else
    outcome := 'ignored';
    detail := format('Payment events of type %s are not handled', v_event);
    return;
  end if;
  if exists (select from app_public.refunds r where r.revio_payment_id = v_payment_id)
     or exists (select from app_public.reversals r where r.revio_payment_id = v_payment_id) then
    outcome := 'ignored';
    detail := 'Already applied';
    return;
  end if;

  v_left := v_deposit.amount - v_deposit.refunded_amount - v_deposit.reversed_amount;
  if v_deposit.status <> 'paid' then
    detail := format('Revio reports a %s of a purchase whose deposit is %s (never credited); nothing to take back', v_kind, v_deposit.status);
  elsif v_amount is null or v_amount <= 0 or v_currency is distinct from v_deposit.currency::text then
    detail := format('Revio reports a %s of an unreadable amount (%s %s); nothing applied', v_kind, coalesce(v_amount::text, '?'), coalesce(v_currency, '?'));
  end if;
  if detail is not null then
    perform app_private.flag_payment('deposit', v_deposit.id, detail);
    outcome := 'review';
    return;
  end if;

  if v_kind = 'provider_refund' then
    -- Our refund confirmed earlier by reading the purchase back (no payment id then): this is its payment.
    select r.* into v_refund from app_public.refunds r
     where r.deposit_id = v_deposit.id and r.status = 'succeeded' and r.revio_payment_id is null and r.amount = v_amount
     order by r.closed_at limit 1 for update;
    if v_refund.id is not null then
      update app_public.refunds r set revio_payment_id = v_payment_id where r.id = v_refund.id;
      outcome := 'ignored';
      detail := 'Already applied (the refund was confirmed by reading the purchase back)';
      return;
    end if;
    select r.* into v_refund from app_public.refunds r
     where r.deposit_id = v_deposit.id and r.status in ('requested', 'submitted') and r.amount = v_amount for update;
    if v_refund.id is not null then
      perform app_private.succeed_refund(v_refund.id, v_payment_id, 'refunded');
      outcome := 'applied';
      detail := 'Refund confirmed; the wallet is debited';
      return;
    end if;
  end if;
  if v_amount > v_left then
    detail := format('Revio reports a %s of %s but only %s of the deposit is left to take back; nothing applied',
                     v_kind, app_private.format_money(v_amount, v_deposit.currency), app_private.format_money(v_left, v_deposit.currency));
    perform app_private.flag_payment('deposit', v_deposit.id, detail);
    outcome := 'review';
    return;
  end if;
  perform app_private.apply_reversal(v_deposit.id, v_kind, v_payment_id, v_amount);
  outcome := 'applied';
  detail := format('%s applied: the wallet is debited, withdrawals wait for an admin''s review',
                   case v_kind when 'chargeback' then 'Chargeback' else 'Refund made at Revio' end);
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
      if v_type = 'payment' then
        -- [A] Revio's Payment object may lack status/updated_on (docs/revio.md).
        v_status := coalesce(v_status, v_body->>'payment_type', split_part(v_event, '.', 2));
        v_updated := coalesce(v_updated, app_private.jsonb_cents(v_body->'created_on'), 0);
      end if;
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
      elsif v_type = 'payment' then
        select r.outcome, r.detail, r.deposit_id into v_outcome, v_detail, v_deposit_id from app_private.apply_payment_event(v_body) r;
      else
        v_outcome := 'unmatched';
        v_detail := format('Events about a %s are not handled', v_type);
      end if;
    end if;
  end if;

  -- A bad-signature body is anyone's bytes: keep its SHA-256, size and first
  -- 1 kB only, so the route cannot be used to fill the disk (issue 9 §3).
  insert into app_private.revio_deliveries (received_at, source, signature_ok, headers, body, body_sha256, body_bytes,
                                            object_type, object_id, event_type, status, updated_on, outcome, detail,
                                            deposit_id, withdrawal_id)
  values (coalesce(p_received_at, now()), coalesce(p_source, 'webhook'), coalesce(p_signature_ok, false), coalesce(p_headers, '{}'),
          case when p_signature_ok is true then coalesce(p_body, '') else app_private.utf8_prefix(coalesce(p_body, ''), 1024) end,
          encode(sha256(convert_to(coalesce(p_body, ''), 'UTF8')), 'hex'), octet_length(coalesce(p_body, '')),
          v_type, v_id, v_event, v_status, v_updated, v_outcome, v_detail, v_deposit_id, v_withdrawal_id);
  return v_outcome;
end;
$$;
comment on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) is
  'Records a Revio delivery (webhook, worker or reconciliation), deduplicates it, applies the guarded transition; returns the outcome.';

revoke all on function app_private.jsonb_cents(jsonb) from public;
revoke all on function app_private.utf8_prefix(text, int) from public;
revoke all on function app_private.revio_attempt_error(jsonb) from public;
revoke all on function app_private.flag_payment(text, uuid, text) from public;
revoke all on function app_private.lock_deposit_for_purchase(jsonb) from public;
revoke all on function app_private.apply_purchase_event(jsonb) from public;
revoke all on function app_private.lock_withdrawal_for_payout(jsonb) from public;
revoke all on function app_private.fail_withdrawal(uuid, text) from public;
revoke all on function app_private.apply_payout_event(jsonb) from public;
revoke all on function app_private.credit_deposit(uuid, text, text, jsonb) from public;
revoke all on function app_private.apply_payment_event(jsonb) from public;
revoke all on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) from public;
-- The webhook route calls it as the API's login role, without switching role.
grant execute on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) to authenticator;
--! EndIncluded payments/revio_events.sql
--! Included payments/clearing.sql
-- Funds availability. A deposit's credit is held on the wallet (a ledger
-- hold, so balance, heldBalance and availableBalance tell the truth) until it
-- clears: DEPOSIT_CLEARING_SECONDS after the credit, or earlier when Revio
-- reports the purchase `settled`. The job payments.release_cleared (queued
-- for clears_at, and swept every minute by cron) releases due holds. With
-- DEPOSIT_CLEARING_SECONDS = 0 a credit is available at once (no hold).

-- Holds p_amount of a just-credited deposit until it clears; queues the release.
create or replace function app_private.start_clearing(p_deposit_id uuid, p_amount bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_seconds bigint := app_private.payment_setting('deposit_clearing_seconds');
  v_deposit app_public.deposits;
  v_hold uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  if v_seconds <= 0 then
    update app_public.deposits set cleared_at = now() where id = p_deposit_id;
    return;
  end if;
  -- A frozen wallet takes no holds; it cannot spend anyway, and unfreezing is
  -- an admin's decision (docs/runbook-payments.md).
  if (select a.frozen from ledger.accounts a where a.id = v_deposit.wallet_id) then
    update app_public.deposits set cleared_at = now() where id = p_deposit_id;
    return;
  end if;
  v_hold := ledger.place_hold(v_deposit.wallet_id, p_amount, 'infinity', 'Deposit clearing ' || p_deposit_id);
  update app_public.deposits
     set clearing_hold_id = v_hold, clears_at = now() + make_interval(secs => v_seconds), cleared_at = null
   where id = p_deposit_id;
  perform graphile_worker.add_job('payments.release_cleared', json_build_object('deposit_id', p_deposit_id),
                                  job_key := 'clearing:' || p_deposit_id,
                                  run_at := now() + make_interval(secs => v_seconds), max_attempts := 5);
end;
$$;

-- Changes the amount still clearing for a deposit (a refund or chargeback
-- takes its share out of it first): releases the open clearing hold and, if
-- p_new_amount > 0, places a new one for that much, with the same clears_at.
-- Returns the amount that was clearing before.
create or replace function app_private.set_clearing_amount(p_deposit_id uuid, p_new_amount bigint)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_old bigint := 0;
  v_hold uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  select h.amount into v_old from ledger.holds h where h.id = v_deposit.clearing_hold_id and h.status = 'placed';
  if v_old is null then
    return 0;
  end if;
  perform ledger.release_hold(v_deposit.clearing_hold_id);
  if p_new_amount > 0 and not (select a.frozen from ledger.accounts a where a.id = v_deposit.wallet_id) then
    v_hold := ledger.place_hold(v_deposit.wallet_id, least(p_new_amount, v_old), 'infinity', 'Deposit clearing ' || p_deposit_id);
  end if;
  update app_public.deposits
     set clearing_hold_id = v_hold, cleared_at = case when v_hold is null then now() else cleared_at end
   where id = p_deposit_id;
  return v_old;
end;
$$;

-- Releases the clearing hold of one deposit (p_deposit_id) or of every
-- deposit whose clears_at has come (null), p_early = true releasing even
-- before clears_at (Revio settled it). Returns how many were released.
create or replace function app_private.release_cleared_deposits(p_deposit_id uuid default null, p_early boolean default false)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit record;
  v_count int := 0;
begin
  for v_deposit in
    select d.id, d.clearing_hold_id from app_public.deposits d
     where d.cleared_at is null and d.clearing_hold_id is not null
       and (p_deposit_id is null or d.id = p_deposit_id)
       and (p_early or d.clears_at <= now())
     order by d.wallet_id, d.id
     limit 1000
  loop
    -- Lock the deposit and re-check: a refund or chargeback may have changed the hold meanwhile.
    perform from app_public.deposits d where d.id = v_deposit.id and d.cleared_at is null
                                             and d.clearing_hold_id = v_deposit.clearing_hold_id for update;
    if found then
      if exists (select from ledger.holds h where h.id = v_deposit.clearing_hold_id and h.status = 'placed') then
        perform ledger.release_hold(v_deposit.clearing_hold_id);
      end if;
      update app_public.deposits set cleared_at = now() where id = v_deposit.id;
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

revoke all on function app_private.start_clearing(uuid, bigint) from public;
revoke all on function app_private.set_clearing_amount(uuid, bigint) from public;
revoke all on function app_private.release_cleared_deposits(uuid, boolean) from public;
--! EndIncluded payments/clearing.sql
--! Included payments/fees.sql
-- Provider fees. Revio keeps its fee out of what it settles (payment.fee_amount,
-- net_amount = amount − fee). The wallet is credited the full amount the
-- person paid; the fee is our expense, booked provider_fees → Revio clearing,
-- so the clearing account matches what Revio actually holds. When Revio
-- reports no fee_amount, the configured schedule (REVIO_FEE_BPS,
-- REVIO_FEE_FIXED_CENTS) is used instead.

-- The fee for a payment of p_amount: Revio's reported fee, else the schedule.
create or replace function app_private.revio_fee(p_payment jsonb, p_amount bigint)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(app_private.jsonb_cents(p_payment->'fee_amount'),
                  case when p_amount is null then 0
                       else (p_amount * app_private.payment_setting('revio_fee_bps') + 5000) / 10000
                            + app_private.payment_setting('revio_fee_fixed_cents') end);
$$;

-- Books a fee (provider_fees → clearing). Returns the entry, or null for a zero fee.
create or replace function app_private.book_provider_fee(p_currency text, p_fee bigint, p_memo text, p_metadata jsonb)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_fee is null or p_fee <= 0 then
    return null;
  end if;
  return ledger.move('fee', ledger.system_account('provider_fees', p_currency), ledger.system_account('revio_clearing', p_currency),
                     p_fee, p_memo, p_metadata);
end;
$$;

revoke all on function app_private.revio_fee(jsonb, bigint) from public;
revoke all on function app_private.book_provider_fee(text, bigint, text, jsonb) from public;
--! EndIncluded payments/fees.sql
--! Included payments/refunds.sql
-- Refunds: refundDeposit holds the amount on the wallet and queues
-- revio.refund_purchase in one transaction; the task asks Revio to refund the
-- purchase (POST /purchases/{id}/refund/) and applies the answer through
-- receive_revio_event. Revio's confirmation (the refund Payment, from the
-- call's answer or the payment.refunded webhook) captures the hold (wallet →
-- Revio clearing); a refusal or purchase.refund_failure releases it.
-- Admins may refund any credited deposit; its owner may within
-- REFUND_USER_WINDOW_SECONDS of the credit, while the money is unspent (the
-- hold needs the available balance).

create or replace function app_private.request_refund(
  p_caller uuid,
  p_is_admin boolean,
  p_deposit_id uuid,
  p_amount bigint,
  p_reason text,
  p_idempotency_key text
)
returns app_public.refunds
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_refund app_public.refunds;
  v_left bigint;
  v_clearing bigint;
  v_hold uuid;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  select r.* into v_refund from app_public.refunds r where r.requested_by = p_caller and r.idempotency_key = p_idempotency_key;
  if found then
    if v_refund.deposit_id is distinct from p_deposit_id or v_refund.amount is distinct from p_amount then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_refund;
  end if;
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'Give a reason of 1 to 500 characters' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;

  select d.* into v_deposit from app_public.deposits d
   where d.id = p_deposit_id and (p_is_admin or d.user_id = p_caller)
   for update;
  if not found then
    raise exception 'Deposit % not found', p_deposit_id using errcode = 'PW320'; -- DEPOSIT_NOT_FOUND
  end if;
  if v_deposit.status <> 'paid' then
    raise exception 'Only a credited deposit can be refunded; this one is %', v_deposit.status using errcode = 'PW321'; -- DEPOSIT_NOT_REFUNDABLE
  end if;
  if not p_is_admin and v_deposit.paid_at < now() - make_interval(secs => app_private.payment_setting('refund_user_window_seconds')) then
    raise exception 'Deposits can be refunded by their owner for % hours after the credit; ask support',
      app_private.payment_setting('refund_user_window_seconds') / 3600 using errcode = 'PW322'; -- REFUND_WINDOW_CLOSED
  end if;
  if exists (select from app_public.refunds r where r.deposit_id = p_deposit_id and r.status in ('requested', 'submitted')) then
    raise exception 'A refund of this deposit is already under way' using errcode = 'PW323'; -- REFUND_IN_PROGRESS
  end if;
  v_left := v_deposit.amount - v_deposit.refunded_amount - v_deposit.reversed_amount;
  if p_amount is null or p_amount <= 0 or p_amount > v_left then
    raise exception 'A refund of this deposit must be between % and %', app_private.format_money(1, v_deposit.currency),
      app_private.format_money(greatest(v_left, 0), v_deposit.currency) using errcode = 'PW324'; -- REFUND_AMOUNT_INVALID
  end if;

  -- Money still clearing is this deposit's own: the refund takes its share out
  -- of the clearing hold first, so it is refundable before it clears.
  v_clearing := app_private.set_clearing_amount(p_deposit_id, 0);
  if v_clearing > p_amount then
    perform app_private.set_clearing_amount_after_release(p_deposit_id, v_clearing - p_amount);
  end if;
  v_hold := ledger.place_hold(v_deposit.wallet_id, p_amount, 'infinity', 'Refund of deposit ' || p_deposit_id);

  insert into app_public.refunds (deposit_id, user_id, wallet_id, amount, currency, reason, requested_by, by_admin,
                                  idempotency_key, hold_id)
  values (p_deposit_id, v_deposit.user_id, v_deposit.wallet_id, p_amount, v_deposit.currency, btrim(p_reason), p_caller,
          p_is_admin, p_idempotency_key, v_hold)
  returning * into v_refund;
  perform app_private.queue_revio_job('revio.refund_purchase', 'refund:' || v_refund.id, json_build_object('refund_id', v_refund.id));
  if p_is_admin then
    perform app_private.log_admin_action('refund_deposit', 'deposit', p_deposit_id::text,
      jsonb_build_object('refund_id', v_refund.id, 'amount', p_amount, 'reason', btrim(p_reason)));
  end if;
  return v_refund;
end;
$$;

-- Places a new clearing hold of p_amount for a deposit whose clearing hold
-- was just released (set_clearing_amount(…, 0)), keeping its clears_at.
create or replace function app_private.set_clearing_amount_after_release(p_deposit_id uuid, p_amount bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_hold uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id;
  if p_amount <= 0 or v_deposit.clears_at <= now() then
    return;
  end if;
  v_hold := ledger.place_hold(v_deposit.wallet_id, p_amount, 'infinity', 'Deposit clearing ' || p_deposit_id);
  update app_public.deposits set clearing_hold_id = v_hold, cleared_at = null where id = p_deposit_id;
end;
$$;

-- The GraphQL mutation `refundDeposit`.
create or replace function app_public.refund_deposit(deposit_id uuid, amount bigint, reason text, idempotency_key text)
returns app_public.refunds
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to refund a deposit' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.request_refund(v_caller, app_private.current_admin_id() is not null, refund_deposit.deposit_id,
                                    refund_deposit.amount, refund_deposit.reason, refund_deposit.idempotency_key);
end;
$$;
comment on function app_public.refund_deposit(uuid, bigint, text, text) is
  E'Refunds `amount` minor units of a credited deposit to the card or account it was paid from, through Revio. '
  'The amount is held at once (status `requested`), sent to Revio (`submitted`) and debited when Revio confirms '
  '(`succeeded`); if Revio refuses, the hold is released (`failed`, with `failureReason`). The owner may refund within '
  'a configured window while the money is unspent; admins any time. One refund per deposit at a time. '
  'Repeating a request with the same `idempotencyKey` returns the first refund.';

-- A refund as revio.refund_purchase needs it.
create or replace function app_private.refund_for_revio(p_refund_id uuid)
returns table (id uuid, status app_public.refund_status, amount bigint, currency char(3), revio_purchase_id text,
               refund_requested_at timestamptz, refundable_before bigint)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select r.id, r.status, r.amount, r.currency, d.revio_purchase_id, r.refund_requested_at, r.refundable_before
    from app_public.refunds r join app_public.deposits d on d.id = r.deposit_id
   where r.id = p_refund_id;
$$;

-- Written (and committed) just before the refund call: the purchase's
-- refundable amount now. Kept from the first call on (a retry compares with it).
create or replace function app_private.mark_refund_requested(p_refund_id uuid, p_refundable bigint)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update app_public.refunds
     set refund_requested_at = coalesce(refund_requested_at, now()), refundable_before = coalesce(refundable_before, p_refundable)
   where id = p_refund_id and status = 'requested';
  if not found then
    raise exception 'Refund % is no longer open', p_refund_id using errcode = 'PW325'; -- PAYMENT_CLOSED
  end if;
end;
$$;

-- Revio took the refund call and is working on it (it answered the purchase
-- in pending_refund). Also set from that purchase event; this covers a
-- snapshot the inbox dropped as a duplicate (same status and updated_on
-- second as an earlier pending_refund).
create or replace function app_private.mark_refund_submitted(p_refund_id uuid, p_revio_status text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update app_public.refunds set status = 'submitted', revio_status = p_revio_status
   where id = p_refund_id and status = 'requested';
end;
$$;

-- Revio refused the refund or reported it failed: release the hold. The
-- share taken out of the clearing hold goes back into it while clearing lasts.
create or replace function app_private.fail_refund(p_refund_id uuid, p_reason text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refund app_public.refunds;
  v_deposit app_public.deposits;
  v_clearing bigint;
begin
  select r.* into v_refund from app_public.refunds r where r.id = p_refund_id for update;
  if v_refund.id is null or v_refund.status not in ('requested', 'submitted') then
    return false;
  end if;
  select d.* into v_deposit from app_public.deposits d where d.id = v_refund.deposit_id for update;
  perform ledger.release_hold(v_refund.hold_id);
  if v_deposit.cleared_at is null and v_deposit.clears_at > now() then
    v_clearing := app_private.set_clearing_amount(v_deposit.id, 0);
    perform app_private.set_clearing_amount_after_release(v_deposit.id, v_clearing + v_refund.amount);
  end if;
  update app_public.refunds set status = 'failed', failure_reason = left(p_reason, 500), closed_at = now() where id = p_refund_id;
  return true;
end;
$$;

-- Revio confirmed the refund: the held amount leaves the wallet for Revio clearing.
create or replace function app_private.succeed_refund(p_refund_id uuid, p_payment_id text, p_revio_status text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refund app_public.refunds;
  v_entry uuid;
begin
  select r.* into v_refund from app_public.refunds r where r.id = p_refund_id for update;
  v_entry := ledger.capture_hold(v_refund.hold_id, ledger.system_account('revio_clearing', v_refund.currency), 'refund', null,
                                 'Refund of deposit ' || v_refund.deposit_id,
                                 jsonb_build_object('refund_id', v_refund.id, 'deposit_id', v_refund.deposit_id, 'revio_payment_id', p_payment_id));
  update app_public.refunds
     set status = 'succeeded', debit_entry_id = v_entry, revio_payment_id = coalesce(p_payment_id, revio_payment_id),
         revio_status = p_revio_status, closed_at = now()
   where id = p_refund_id;
  update app_public.deposits set refunded_amount = refunded_amount + v_refund.amount where id = v_refund.deposit_id;
  return v_entry;
end;
$$;

revoke all on function app_private.request_refund(uuid, boolean, uuid, bigint, text, text) from public;
revoke all on function app_private.set_clearing_amount_after_release(uuid, bigint) from public;
revoke all on function app_public.refund_deposit(uuid, bigint, text, text) from public;
revoke all on function app_private.refund_for_revio(uuid) from public;
revoke all on function app_private.mark_refund_requested(uuid, bigint) from public;
revoke all on function app_private.fail_refund(uuid, text) from public;
revoke all on function app_private.mark_refund_submitted(uuid, text) from public;
revoke all on function app_private.succeed_refund(uuid, text, text) from public;
grant execute on function app_public.refund_deposit(uuid, bigint, text, text) to app_user, app_admin;
--! EndIncluded payments/refunds.sql
--! Included payments/chargebacks.sql
-- Chargebacks and refunds Revio makes on its own, after the wallet was
-- credited (payment.charged_back, or a payment.refunded that matches none of
-- our refunds). The money has already left Revio clearing, so the wallet is
-- debited: what it has available (after releasing the deposit's own clearing
-- hold), and the rest — never a silent negative balance — is booked to the
-- chargeback_receivable account and shown to admins (admin_reversals,
-- audit.reversals, pgwallet_reversals_unreviewed). Withdrawals from the
-- wallet stop (WITHDRAWALS_BLOCKED) until an admin reviews every open reversal.

create or replace function app_private.apply_reversal(
  p_deposit_id uuid,
  p_kind text,
  p_payment_id text,
  p_amount bigint
)
returns app_public.reversals
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_reversal app_public.reversals;
  v_clearing bigint;
  v_available bigint;
  v_debit bigint;
  v_receivable bigint;
  v_legs ledger.leg[];
  v_entry uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id for update;
  -- The deposit's own clearing hold is money that is going back: release it
  -- (re-placing what is left of it) so the debit can use it.
  v_clearing := app_private.set_clearing_amount(p_deposit_id, 0);
  perform app_private.set_clearing_amount_after_release(p_deposit_id, v_clearing - p_amount);

  select case when a.frozen then 0 else greatest(a.balance - a.held, 0) end into v_available
    from ledger.accounts a where a.id = v_deposit.wallet_id for update;
  v_debit := least(v_available, p_amount);
  v_receivable := p_amount - v_debit;
  v_legs := array[row(ledger.system_account('revio_clearing', v_deposit.currency), p_amount)]::ledger.leg[];
  if v_debit > 0 then
    v_legs := v_legs || row(v_deposit.wallet_id, -v_debit)::ledger.leg;
  end if;
  if v_receivable > 0 then
    v_legs := v_legs || row(ledger.system_account('chargeback_receivable', v_deposit.currency), -v_receivable)::ledger.leg;
  end if;
  v_entry := ledger.post_entry(case p_kind when 'chargeback' then 'chargeback' else 'reversal' end::ledger.entry_kind, v_legs,
                               case p_kind when 'chargeback' then 'Chargeback of deposit ' else 'Revio refunded deposit ' end || p_deposit_id,
                               jsonb_build_object('deposit_id', p_deposit_id, 'revio_payment_id', p_payment_id,
                                                  'debited', v_debit, 'receivable', v_receivable));
  insert into app_public.reversals (deposit_id, user_id, wallet_id, kind, revio_payment_id, amount, currency,
                                    debited_amount, receivable_amount, entry_id)
  values (p_deposit_id, v_deposit.user_id, v_deposit.wallet_id, p_kind, p_payment_id, p_amount, v_deposit.currency,
          v_debit, v_receivable, v_entry)
  returning * into v_reversal;
  update app_public.deposits set reversed_amount = reversed_amount + p_amount where id = p_deposit_id;
  perform app_private.flag_payment('deposit', p_deposit_id,
    format('Revio %s %s after the credit: %s debited from the wallet, %s owed (chargeback receivable); withdrawals are blocked until an admin reviews it',
           case p_kind when 'chargeback' then 'charged back' else 'refunded' end,
           app_private.format_money(p_amount, v_deposit.currency), app_private.format_money(v_debit, v_deposit.currency),
           app_private.format_money(v_receivable, v_deposit.currency)));
  return v_reversal;
end;
$$;

-- Withdrawals wait while a reversal on the wallet is unreviewed.
create or replace function app_private.assert_no_open_reversal(p_wallet_id uuid)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from app_public.reversals r where r.wallet_id = p_wallet_id and r.reviewed_at is null) then
    raise exception 'Withdrawals from this wallet are paused while a chargeback or reversal is reviewed; contact support'
      using errcode = 'PW326'; -- WITHDRAWALS_BLOCKED
  end if;
end;
$$;

-- Every reversal with its receivable, for auditors and the runbook.
create or replace view audit.reversals as
  select r.id, r.kind, r.created_at, r.deposit_id, r.user_id, r.wallet_id, r.revio_payment_id, r.amount, r.currency,
         r.debited_amount, r.receivable_amount, r.entry_id, r.reviewed_at, r.reviewed_by, r.review_note,
         (r.reviewed_at is null) as withdrawals_blocked
    from app_public.reversals r
   order by r.created_at desc;

-- Admins: reversals, unreviewed first.
create or replace function app_public.admin_reversals()
returns setof app_public.reversals
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query select r.* from app_public.reversals r order by r.reviewed_at nulls first, r.created_at desc limit 500;
end;
$$;
comment on function app_public.admin_reversals() is
  'Admins only: chargebacks and refunds Revio made after a credit, with the amount debited and the amount owed (chargeback receivable); unreviewed first.';

-- An admin has looked (and settled any receivable with an adjustment, or
-- decided to write it off): withdrawals may resume once none is left open.
create or replace function app_public.admin_review_reversal(reversal_id uuid, note text)
returns app_public.reversals
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_review_reversal.note);
  v_reversal app_public.reversals;
begin
  update app_public.reversals r set reviewed_at = now(), reviewed_by = v_admin, review_note = v_note
   where r.id = admin_review_reversal.reversal_id and r.reviewed_at is null
  returning r.* into v_reversal;
  if v_reversal.id is null then
    raise exception 'No unreviewed reversal has that id' using errcode = 'PW327'; -- REVERSAL_NOT_OPEN
  end if;
  perform app_private.log_admin_action('review_reversal', 'reversal', v_reversal.id::text,
    jsonb_build_object('deposit_id', v_reversal.deposit_id, 'amount', v_reversal.amount,
                       'receivable', v_reversal.receivable_amount, 'note', v_note));
  return v_reversal;
end;
$$;
comment on function app_public.admin_review_reversal(uuid, text) is
  'Admins only: mark a chargeback or reversal reviewed, with a note; withdrawals from the wallet resume when none is left open. Logged.';

revoke all on function app_private.apply_reversal(uuid, text, text, bigint) from public;
revoke all on function app_private.assert_no_open_reversal(uuid) from public;
revoke all on function app_public.admin_reversals() from public;
revoke all on function app_public.admin_review_reversal(uuid, text) from public;
grant execute on function app_public.admin_reversals() to app_admin;
grant execute on function app_public.admin_review_reversal(uuid, text) to app_admin;
grant select on audit.reversals to app_auditor;
--! EndIncluded payments/chargebacks.sql
--! Included payments/cancellations.sql
-- Cancellations. cancelDeposit closes a deposit that is not paid yet at once
-- and, if a Revio purchase exists or may exist, queues revio.cancel_purchase
-- (POST /purchases/{id}/cancel/) so it can no longer be paid. A payment that
-- beats the cancel is still credited and flagged (apply_purchase_event):
-- money that reached Revio is never lost. cancelWithdrawal closes a
-- withdrawal that has not been sent to Revio yet and releases its hold at
-- once; after that only Revio decides (no payout cancel exists, REVIO_API.md §3).

create or replace function app_public.cancel_deposit(deposit_id uuid)
returns app_public.deposits
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_deposit app_public.deposits;
begin
  if v_caller is null then
    raise exception 'Sign in to cancel a deposit' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select d.* into v_deposit from app_public.deposits d
   where d.id = cancel_deposit.deposit_id and d.user_id = v_caller for update;
  if not found then
    raise exception 'Deposit % not found', cancel_deposit.deposit_id using errcode = 'PW320'; -- DEPOSIT_NOT_FOUND
  end if;
  if v_deposit.status = 'cancelled' then
    return v_deposit; -- repeating the request changes nothing
  end if;
  if v_deposit.status not in ('pending', 'awaiting_payment') then
    raise exception 'Only a deposit that is not paid yet can be cancelled; this one is %', v_deposit.status
      using errcode = 'PW328'; -- DEPOSIT_NOT_CANCELLABLE
  end if;
  update app_public.deposits d
     set status = 'cancelled', failure_reason = 'You cancelled the deposit.', cancelled_at = now()
   where d.id = v_deposit.id
  returning d.* into v_deposit;
  if v_deposit.revio_purchase_id is not null or v_deposit.purchase_requested_at is not null then
    perform app_private.queue_revio_job('revio.cancel_purchase', 'deposit-cancel:' || v_deposit.id,
                                        json_build_object('deposit_id', v_deposit.id));
  end if;
  return v_deposit;
end;
$$;
comment on function app_public.cancel_deposit(uuid) is
  E'Cancels one of your deposits that is not paid yet (status `pending` or `awaiting_payment`): it becomes `cancelled` '
  'at once and Revio''s checkout is closed shortly after. If a payment was already on its way, the wallet is still '
  'credited (the deposit then shows `paid`). Cancelling twice is harmless.';

create or replace function app_public.cancel_withdrawal(withdrawal_id uuid)
returns app_public.withdrawals
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_withdrawal app_public.withdrawals;
begin
  if v_caller is null then
    raise exception 'Sign in to cancel a withdrawal' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select w.* into v_withdrawal from app_public.withdrawals w
   where w.id = cancel_withdrawal.withdrawal_id and w.user_id = v_caller for update;
  if not found then
    raise exception 'Withdrawal % not found', cancel_withdrawal.withdrawal_id using errcode = 'PW329'; -- WITHDRAWAL_NOT_FOUND
  end if;
  if v_withdrawal.status = 'cancelled' then
    return v_withdrawal;
  end if;
  -- payout_requested_at is set (and committed) before the payout is created:
  -- from then on the payout may exist at Revio, which has no cancel.
  if v_withdrawal.status <> 'requested' or v_withdrawal.payout_requested_at is not null or v_withdrawal.revio_payout_id is not null then
    raise exception 'The withdrawal was already sent to the bank and can no longer be cancelled'
      using errcode = 'PW330'; -- WITHDRAWAL_NOT_CANCELLABLE
  end if;
  perform ledger.release_hold(v_withdrawal.hold_id);
  update app_public.withdrawals w
     set status = 'cancelled', failure_reason = 'You cancelled the withdrawal.', closed_at = now()
   where w.id = v_withdrawal.id
  returning w.* into v_withdrawal;
  return v_withdrawal;
end;
$$;
comment on function app_public.cancel_withdrawal(uuid) is
  E'Cancels one of your withdrawals that has not been sent to Revio yet (status `requested`): the held amount is '
  'available again at once and the withdrawal becomes `cancelled`. WITHDRAWAL_NOT_CANCELLABLE once it was sent.';

revoke all on function app_public.cancel_deposit(uuid) from public;
revoke all on function app_public.cancel_withdrawal(uuid) from public;
grant execute on function app_public.cancel_deposit(uuid) to app_user;
grant execute on function app_public.cancel_withdrawal(uuid) to app_user;
--! EndIncluded payments/cancellations.sql
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
-- amount, currency, fee_amount, net_amount}], one per object of
-- revio_objects_for_daily_check) with the ledger, writes each difference not
-- already open, and returns how many it wrote. Kinds: missing_at_revio,
-- paid_not_credited, credited_not_paid, payout_not_recorded,
-- paid_out_not_confirmed, amount_differs, fee_differs (Revio's reported fee
-- against the one we booked), taken_back_differs (Revio's refundable amount
-- against the deposit less what we applied of refunds and chargebacks: one
-- whose webhook never came shows here), clearing_total (per currency, Revio's net
-- settlement for these objects — amount less fee — against the clearing
-- postings of their credit and fee entries) and clearing_unexplained (the
-- clearing account's whole balance against every credited deposit less fees,
-- refunds and reversals, and every paid withdrawal plus its fee).
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
           o->>'status' as status, app_private.jsonb_cents(o->'amount') as amount, o->>'currency' as currency,
           app_private.jsonb_cents(o->'fee_amount') as revio_fee, app_private.jsonb_cents(o->'net_amount') as revio_net,
           app_private.jsonb_cents(o->'refundable_amount') as revio_refundable
      from jsonb_array_elements(p_observations) o
  ), ours as (
    -- Each object as the ledger sees it: the amount its entry moved through clearing.
    select obs.*, d.revio_purchase_id as revio_id, d.currency as our_currency, d.amount as our_amount,
           d.status::text as our_status, d.status = 'paid' as settled,
           obs.status in ('paid', 'cleared', 'settled', 'refunded', 'pending_refund', 'chargeback') as revio_settled,
           -(select sum(p.amount) from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id in (d.credit_entry_id, d.fee_entry_id) and a.kind = 'revio_clearing')::bigint as ledger_net,
           d.fee_amount as our_fee,
           d.amount - d.refunded_amount - d.reversed_amount as our_left
      from obs join app_public.deposits d on d.id = obs.id where obs.kind = 'deposit'
    union all
    select obs.*, w.revio_payout_id, w.currency, w.amount, w.status::text, w.status = 'paid',
           obs.status = 'success',
           -(select sum(p.amount) from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id in (w.payout_entry_id, w.fee_entry_id) and a.kind = 'revio_clearing')::bigint,
           w.fee_amount, null::bigint
      from obs join app_public.withdrawals w on w.id = obs.id where obs.kind = 'withdrawal'
  ), checked as (
    select o.kind, o.id, o.revio_id, o.our_currency as currency, coalesce(o.ledger_net, 0) as ledger_amount,
           -- Net settlement: a purchase settles amount − fee; a payout costs amount + fee.
           case when o.revio_settled then case o.kind when 'deposit' then coalesce(o.revio_net, o.amount - coalesce(o.revio_fee, 0))
                                                      else -(o.amount + coalesce(o.revio_fee, 0)) end else 0 end as revio_amount,
           case
             when not o.is_found then 'missing_at_revio'
             when o.revio_settled and not o.settled then case o.kind when 'deposit' then 'paid_not_credited' else 'payout_not_recorded' end
             when o.settled and not o.revio_settled then case o.kind when 'deposit' then 'credited_not_paid' else 'paid_out_not_confirmed' end
             when o.settled and (o.amount is distinct from o.our_amount or o.currency is distinct from o.our_currency) then 'amount_differs'
             when o.settled and o.revio_fee is not null and o.revio_fee is distinct from coalesce(o.our_fee, 0) then 'fee_differs'
             -- A refund or chargeback applied on one side only (e.g. its webhook never came).
             when o.settled and o.kind = 'deposit' and o.revio_refundable is not null and o.revio_refundable <> o.our_left then 'taken_back_differs'
           end as problem,
           format('Revio: %s %s (fee %s%s); pgwallet: %s %s (fee %s%s)', coalesce(o.status, 'not found'),
                  coalesce(app_private.format_money(o.amount, coalesce(o.currency, '???')), ''),
                  coalesce(app_private.format_money(o.revio_fee, coalesce(o.currency, '???')), 'not reported'),
                  coalesce(', refundable ' || app_private.format_money(o.revio_refundable, coalesce(o.currency, '???')), ''),
                  o.our_status, app_private.format_money(o.our_amount, o.our_currency),
                  app_private.format_money(coalesce(o.our_fee, 0), o.our_currency),
                  coalesce(', left after refunds and chargebacks ' || app_private.format_money(o.our_left, o.our_currency), '')) as detail
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
           format('The Revio clearing account holds %s but credited deposits (less fees, refunds and reversals) less paid withdrawals (and their fees) come to %s',
                  app_private.format_money(-c.balance, c.currency), app_private.format_money(coalesce(e.expected, 0), c.currency))
      from (select a.currency, sum(a.balance)::bigint as balance from ledger.accounts a
             where a.kind = 'revio_clearing' group by a.currency) c
      left join (select x.currency, sum(x.amount)::bigint as expected from (
                   select d.currency, d.amount - coalesce(d.fee_amount, 0) - d.refunded_amount - d.reversed_amount as amount
                     from app_public.deposits d where d.status = 'paid'
                   union all
                   select w.currency, -(w.amount + coalesce(w.fee_amount, 0)) from app_public.withdrawals w where w.status = 'paid') x
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
--! Included payments/lifecycle_policies.sql
-- Who sees refunds and reversals (chargebacks), and the new deposit and
-- withdrawal columns: each person their own rows through the columns granted
-- below; admins everything through admin_reversals and the audit views.
-- Rows are written only by the SECURITY DEFINER functions.

alter table app_public.refunds enable row level security;
drop policy if exists select_own on app_public.refunds;
create policy select_own on app_public.refunds
  for select to app_user
  using (user_id = (select app_public.current_user_id()));

alter table app_public.reversals enable row level security;
drop policy if exists select_own on app_public.reversals;
create policy select_own on app_public.reversals
  for select to app_user
  using (user_id = (select app_public.current_user_id()));

revoke all on app_public.refunds, app_public.reversals
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
grant select (id, deposit_id, wallet_id, amount, currency, reason, by_admin, idempotency_key, status, failure_reason,
              needs_attention, created_at, updated_at, closed_at)
  on app_public.refunds to app_user;
grant select (id, deposit_id, wallet_id, kind, amount, currency, debited_amount, receivable_amount, reviewed_at, created_at)
  on app_public.reversals to app_user;
grant select (clears_at, cleared_at, refunded_amount, reversed_amount, cancelled_at) on app_public.deposits to app_user;

-- Auditors read refunds through a view, like every other payment table.
create or replace view audit.refunds as
  select r.id, r.created_at, r.deposit_id, r.user_id, r.wallet_id, r.amount, r.currency, r.reason, r.requested_by, r.by_admin,
         r.status, r.hold_id, r.refundable_before, r.refund_requested_at, r.revio_payment_id, r.revio_status,
         r.debit_entry_id, r.failure_reason, r.needs_attention, r.attention_reason, r.closed_at
    from app_public.refunds r
   order by r.created_at desc;
grant select on audit.refunds to app_auditor;

comment on table app_public.refunds is
  E'@behavior -insert -update -delete\nA refund of a credited deposit back to the card or account it was paid from (refundDeposit).';
comment on constraint refunds_idempotency on app_public.refunds is '@behavior -single';
comment on constraint refunds_revio_payment_id_key on app_public.refunds is '@behavior -single';
comment on column app_public.refunds.status is
  'requested (the amount is held), submitted (Revio is refunding), then succeeded (the wallet is debited) or failed with failureReason (the hold is released).';
comment on column app_public.refunds.amount is E'@behavior -filterBy -orderBy\nMinor units (cents).';
comment on column app_public.refunds.by_admin is E'@behavior -filterBy -orderBy\nTrue when our staff made the refund.';
comment on column app_public.refunds.idempotency_key is E'@behavior -filterBy -orderBy\nThe key the refund was requested with.';

comment on table app_public.reversals is
  E'@behavior -insert -update -delete\nA chargeback or a refund Revio made after a deposit was credited: the wallet was debited what it had, '
  'and any rest is owed (receivableAmount). Withdrawals wait until our staff has reviewed it (reviewedAt).';
comment on constraint reversals_revio_payment_id_key on app_public.reversals is '@behavior -single';
comment on column app_public.reversals.receivable_amount is E'@behavior -filterBy -orderBy\nWhat the wallet could not cover and is owed to us.';

comment on column app_public.deposits.clears_at is E'@behavior -filterBy -orderBy\nWhen the credited money becomes available for transfers and withdrawals (it is held until then).';
comment on column app_public.deposits.cleared_at is E'@behavior -filterBy -orderBy\nWhen the credited money became available.';
comment on column app_public.deposits.refunded_amount is E'@behavior -filterBy -orderBy\nHow much of the deposit was refunded.';
comment on column app_public.deposits.reversed_amount is E'@behavior -filterBy -orderBy\nHow much of the deposit was charged back or refunded by Revio.';
comment on column app_public.deposits.cancelled_at is E'@behavior -filterBy -orderBy\nWhen you cancelled the deposit.';
comment on column app_public.deposits.status is
  'pending until Revio''s checkout exists, awaiting_payment while the person can pay at checkoutUrl, then paid (the wallet is credited; '
  'the money is held until clearsAt), failed, cancelled (cancelDeposit, or at Revio) or expired.';
comment on column app_public.withdrawals.status is
  'requested (the amount is held), submitted (the payout is at Revio), then paid, failed with failureReason (the hold is released), '
  'or cancelled (cancelWithdrawal before it was sent; the hold is released).';
--! EndIncluded payments/lifecycle_policies.sql
--! Included metrics/snapshot.sql
-- What /metrics reports about the database (src/metrics/database.ts). The API
-- connects only as `authenticator`, which can read none of these tables, so
-- one SECURITY DEFINER function answers with counts and ages as jsonb: no
-- row, amount, email or id ever leaves it.
--
-- p_ledger_checks = false (every scrape) stays cheap: the job queue (small:
-- graphile-worker deletes completed jobs), open deposits and withdrawals
-- (partial indexes *_open_idx) and open reconciliation discrepancies (partial
-- index). p_ledger_checks = true (every METRICS_LEDGER_CHECK_INTERVAL_SECONDS)
-- adds what reads whole tables: counts by every status, payments needing
-- attention, and the ledger invariants, which must all read zero: currencies
-- whose trial balance is not zero, unbalanced entries, balance drift rows
-- (reads every posting) and disabled ledger guards.
create or replace function app_private.metrics_snapshot(p_ledger_checks boolean default false)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_result jsonb;
  v_jobs jsonb := '[]';
begin
  -- graphile-worker installs its schema when the worker first starts.
  if to_regclass('graphile_worker.jobs') is not null then
    select coalesce(jsonb_agg(jsonb_build_object(
             'task', t.task,
             'ready', t.ready,
             'scheduled', t.scheduled,
             'running', t.running,
             'dead', t.dead,
             'oldest_ready_seconds', t.oldest_ready_seconds) order by t.task), '[]')
      into v_jobs
      from (
        select j.task_identifier as task,
               count(*) filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at <= now()) as ready,
               count(*) filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at > now()) as scheduled,
               count(*) filter (where j.locked_at is not null) as running,
               count(*) filter (where j.attempts >= j.max_attempts and j.locked_at is null) as dead,
               coalesce(extract(epoch from now() - min(j.run_at)
                          filter (where j.attempts < j.max_attempts and j.locked_at is null and j.run_at <= now())), 0) as oldest_ready_seconds
          from graphile_worker.jobs j
         group by j.task_identifier
      ) t;
  end if;

  v_result := jsonb_build_object(
    'jobs', v_jobs,
    'deposits_open', (
      select coalesce(jsonb_agg(jsonb_build_object('status', s.status, 'count', s.n, 'oldest_seconds', s.oldest) order by s.status), '[]')
        from (select d.status::text as status, count(*) as n, extract(epoch from now() - min(d.created_at)) as oldest
                from app_public.deposits d
               where d.status in ('pending', 'awaiting_payment')
               group by d.status) s),
    'withdrawals_open', (
      select coalesce(jsonb_agg(jsonb_build_object('status', s.status, 'count', s.n, 'oldest_seconds', s.oldest) order by s.status), '[]')
        from (select w.status::text as status, count(*) as n, extract(epoch from now() - min(w.created_at)) as oldest
                from app_public.withdrawals w
               where w.status in ('requested', 'submitted')
               group by w.status) s),
    'discrepancies_open', (select count(*) from app_private.revio_discrepancies r where r.resolved_at is null),
    -- Chargebacks and Revio's own refunds waiting for an admin (partial index
    -- reversals_wallet_open_idx), and what users owe (a few system accounts).
    'reversals_unreviewed', (
      select coalesce(jsonb_object_agg(s.kind, s.n), '{}')
        from (select r.kind, count(*) as n from app_public.reversals r where r.reviewed_at is null group by r.kind) s),
    'chargeback_receivable', (
      select coalesce(jsonb_object_agg(s.currency, s.owed), '{}')
        from (select a.currency, -sum(a.balance) as owed from ledger.accounts a
               where a.kind::text = 'chargeback_receivable' group by a.currency) s)
  );

  if p_ledger_checks then
    v_result := v_result || jsonb_build_object(
      'deposits_by_status', (
        select coalesce(jsonb_object_agg(s.status, s.n), '{}')
          from (select d.status::text as status, count(*) as n from app_public.deposits d group by d.status) s),
      'withdrawals_by_status', (
        select coalesce(jsonb_object_agg(s.status, s.n), '{}')
          from (select w.status::text as status, count(*) as n from app_public.withdrawals w group by w.status) s),
      'deposits_needing_attention', (select count(*) from app_public.deposits d where d.needs_attention),
      'withdrawals_needing_attention', (select count(*) from app_public.withdrawals w where w.needs_attention),
      'trial_balance_nonzero_currencies', (select count(*) from audit.trial_balance t where t.net_balance <> 0),
      'unbalanced_entries', (select count(*) from audit.unbalanced_entries),
      'balance_drift_rows', (select count(*) from audit.balance_drift),
      'ledger_guards_enabled', (select count(*) from audit.ledger_guards g where g.enabled),
      'ledger_guards_disabled', (select count(*) from audit.ledger_guards g where not g.enabled)
    );
  end if;
  return v_result;
end;
$$;
comment on function app_private.metrics_snapshot(boolean) is
  'Counts and ages for /metrics (no row data). Cheap without p_ledger_checks; with it, reads whole tables (ledger invariants).';
revoke all on function app_private.metrics_snapshot(boolean) from public;
grant execute on function app_private.metrics_snapshot(boolean) to authenticator;
--! EndIncluded metrics/snapshot.sql
-- Re-asserts SECURITY DEFINER on the task functions whose files were included
-- above and lets the worker run the refund and clearing tasks.
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
    -- revio.refund_purchase
    'app_private.refund_for_revio(uuid)',
    'app_private.mark_refund_requested(uuid, bigint)',
    'app_private.mark_refund_submitted(uuid, text)',
    'app_private.fail_refund(uuid, text)',
    -- payments.release_cleared
    'app_private.release_cleared_deposits(uuid, boolean)',
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

-- Enter migration here
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

--!include payments/settings.sql
--!include payments/deposits.sql
--!include payments/withdrawals.sql
--!include payments/jobs.sql
--!include payments/revio_events.sql
--!include payments/clearing.sql
--!include payments/fees.sql
--!include payments/refunds.sql
--!include payments/chargebacks.sql
--!include payments/cancellations.sql
--!include payments/reconciliation.sql
--!include payments/lifecycle_policies.sql
--!include metrics/snapshot.sql
-- Re-asserts SECURITY DEFINER on the task functions whose files were included
-- above and lets the worker run the refund and clearing tasks.
--!include worker/grants.sql

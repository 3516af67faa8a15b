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

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

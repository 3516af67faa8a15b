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

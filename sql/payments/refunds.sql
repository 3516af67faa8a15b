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

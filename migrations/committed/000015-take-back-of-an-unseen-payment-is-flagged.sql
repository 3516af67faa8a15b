--! Previous: sha1:5ae72e2391db23bfc669011c71f864e3707c9cab
--! Hash: sha1:584c200fcdf22bb5bf5bfcf0d1c3353b9e2befd6
--! Message: take-back of an unseen payment is flagged

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
    if v_deposit.status in ('pending', 'awaiting_payment') then
      -- Paid and taken back before we saw the payment (its webhook lost, say):
      -- never silent. A person checks with Revio and settles it (docs/runbook-payments.md).
      detail := format('Revio reports the purchase %s, but its payment was never seen here: check with Revio; '
                       'if it was paid, credit it with an adjustment and book the take-back', v_status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    elsif v_deposit.status <> 'paid' then
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
    -- worker liveness (src/worker/heartbeat.ts, worker_release_stale_locks)
    'app_private.worker_heartbeat(text, text, int, bigint[])',
    'app_private.worker_signoff(text)',
    'app_private.release_stale_worker_locks(interval)',
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

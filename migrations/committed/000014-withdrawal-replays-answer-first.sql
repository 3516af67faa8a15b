--! Previous: sha1:9e0414787b6f6620ed9ca8ea3940ac2ee8bb29c6
--! Hash: sha1:5ae72e2391db23bfc669011c71f864e3707c9cab
--! Message: withdrawal replays answer first

-- A replay of an acknowledged withdrawal gets its first answer before the
-- checks that guard a new one (found by the fault run: a chargeback since
-- blocked the replay).
--! Included payments/withdrawals.sql
-- Withdrawals: requestWithdrawal places a hold on the wallet (the available
-- balance drops at once) and queues revio.create_payout in one transaction.
-- The task creates and executes the payout (reference = the withdrawal id);
-- payout.success captures the hold (wallet → withdrawals in flight → Revio
-- clearing), payout.failed or a final refusal releases it (revio_events.sql).

-- The withdrawal an idempotency key already made, if the request is the same
-- one; a different request with that key fails with IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.same_withdrawal_request(
  p_withdrawal app_public.withdrawals,
  p_wallet_id uuid,
  p_amount bigint,
  p_bank_account_id uuid
)
returns app_public.withdrawals
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_withdrawal.wallet_id is distinct from p_wallet_id or p_withdrawal.amount is distinct from p_amount
     or p_withdrawal.bank_account_id is distinct from p_bank_account_id then
    raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
  end if;
  return p_withdrawal;
end;
$$;
revoke all on function app_private.same_withdrawal_request(app_public.withdrawals, uuid, bigint, uuid) from public;

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
  -- A replay of an acknowledged request gets its first answer, whatever has
  -- changed since (a chargeback now blocking withdrawals, say): idempotency
  -- is decided before the checks that guard a new withdrawal.
  select w.* into v_withdrawal from app_public.withdrawals w
   where w.user_id = p_caller and w.idempotency_key = p_idempotency_key;
  if v_withdrawal.id is not null then
    return app_private.same_withdrawal_request(v_withdrawal, p_wallet_id, p_amount, p_bank_account_id);
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
    -- A racing twin committed first.
    select w.* into v_withdrawal from app_public.withdrawals w
     where w.user_id = p_caller and w.idempotency_key = p_idempotency_key;
    return app_private.same_withdrawal_request(v_withdrawal, p_wallet_id, p_amount, p_bank_account_id);
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

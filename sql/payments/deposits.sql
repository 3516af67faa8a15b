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

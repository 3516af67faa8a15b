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

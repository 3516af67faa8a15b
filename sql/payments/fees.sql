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

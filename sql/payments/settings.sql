-- Payment limits and job settings. The API passes the configured values
-- (DEPOSIT_MIN_CENTS …, see README) to every signed-in request as
-- pgwallet.* settings, and sets them on the connections of the webhook route
-- and the worker (src/db/pools.ts), so credits made by a webhook follow the
-- same clearing and fee rules; these defaults apply when a setting is absent
-- (direct SQL) and equal the environment's defaults.

create or replace function app_private.payment_setting(p_name text)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    nullif(current_setting('pgwallet.' || p_name, true), '')::bigint,
    case p_name
      when 'deposit_min_cents' then 1000              -- R 10
      when 'deposit_max_cents' then 5000000           -- R 50 000
      when 'withdrawal_min_cents' then 1000           -- R 10
      when 'withdrawal_max_cents' then 2500000        -- R 25 000
      when 'withdrawal_daily_limit_cents' then 5000000 -- R 50 000 per wallet per 24 h
      when 'job_max_attempts' then 10                 -- about 9 hours of backoff
      when 'deposit_clearing_seconds' then 259200     -- 72 h: card payments settle in 2 to 3 days
      when 'refund_user_window_seconds' then 604800   -- people may refund their own deposit for 7 days
      when 'revio_fee_bps' then 0                     -- fee schedule when Revio reports no fee: basis points …
      when 'revio_fee_fixed_cents' then 0             -- … plus a fixed amount per payment
    end);
$$;
comment on function app_private.payment_setting(text) is
  'A payment limit or job setting: the pgwallet.<name> setting if the API passed one, else the default.';

-- Formats minor units for messages: 150050 ZAR → "ZAR 1500.50".
create or replace function app_private.format_money(p_amount bigint, p_currency text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select p_currency || ' ' || to_char(p_amount / 100.0, 'FM999999999999990.00');
$$;

revoke all on function app_private.payment_setting(text) from public;
revoke all on function app_private.format_money(bigint, text) from public;

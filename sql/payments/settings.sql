-- Payment limits and job settings. The API passes the configured values
-- (DEPOSIT_MIN_CENTS …, see README) to every signed-in request as
-- pgwallet.* settings; these defaults apply when a setting is absent (direct
-- SQL, tests) and equal the environment's defaults.

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

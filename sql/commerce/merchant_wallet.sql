-- Merchant wallets: kind merchant_wallet, owner = the merchant, one logical
-- wallet per (merchant, currency) split into shards like the system accounts
-- (ledger.system_account). Every sale credits the shard of the posting
-- session's backend, so a popular merchant's buyers do not queue on one row
-- lock; the balance is the sum over the shards.
--
-- Money leaves a merchant wallet (refunds, payouts) in ONE entry with one leg
-- per shard, taking each shard's available balance in id order until the
-- amount is covered: no sweep entry first, no shard is ever negative, and the
-- entry locks every shard (plus the other side) in id order like every ledger
-- writer. Debits are rare next to credits, so locking all shards is cheap.

-- The shard this session credits, opened on first use.
create or replace function commerce.merchant_account(p_merchant_id uuid, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard smallint := pg_backend_pid() % least(greatest(coalesce(commerce.setting('merchant_shards'), 16), 1), 256);
  v_id uuid;
begin
  select a.id into v_id from ledger.accounts a
   where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.shard = v_shard;
  if v_id is null then
    perform ledger.assert_currency(p_currency);
    insert into ledger.accounts (kind, owner_id, currency, shard) values ('merchant_wallet', p_merchant_id, p_currency, v_shard)
    on conflict (owner_id, currency, shard) where owner_id is not null and kind <> 'user_wallet' do nothing
    returning id into v_id;
    if v_id is null then  -- another session opened it first
      select a.id into v_id from ledger.accounts a
       where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.shard = v_shard;
    end if;
  end if;
  return v_id;
end;
$$;

-- Legs that take p_amount out of the merchant's shards into p_to, after
-- locking the shards and p_to in id order. INSUFFICIENT_FUNDS (PW101) when
-- the shards' available sum is short.
create or replace function commerce.merchant_debit_legs(p_merchant_id uuid, p_currency text, p_amount bigint, p_to uuid)
returns ledger.leg[]
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_legs ledger.leg[] := array[row(p_to, p_amount)::ledger.leg];
  v_left bigint := p_amount;
  v_shard record;
begin
  perform from ledger.accounts a
   where a.id = p_to or (a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency)
   order by a.id for update;
  for v_shard in
    select a.id, a.balance - a.held as available from ledger.accounts a
     where a.owner_id = p_merchant_id and a.kind = 'merchant_wallet' and a.currency = p_currency and a.balance - a.held > 0
     order by a.id
  loop
    exit when v_left = 0;
    v_legs := v_legs || row(v_shard.id, -least(v_left, v_shard.available))::ledger.leg;
    v_left := v_left - least(v_left, v_shard.available);
  end loop;
  if v_left > 0 then
    raise exception 'The merchant wallet has % available; % is needed',
      app_private.format_money(p_amount - v_left, p_currency), app_private.format_money(p_amount, p_currency)
      using errcode = 'PW101'; -- INSUFFICIENT_FUNDS
  end if;
  return v_legs;
end;
$$;

-- The caller's merchant wallets, one row per currency, summed over shards.
create or replace function app_public.my_merchant_balances()
returns table (currency char(3), balance bigint, available_balance bigint, shards int)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.currency, sum(a.balance)::bigint, sum(a.balance - a.held)::bigint, count(*)::int
    from ledger.accounts a
   where a.owner_id = commerce.current_merchant_id() and a.kind::text = 'merchant_wallet'
   group by a.currency
   order by a.currency;
$$;
comment on function app_public.my_merchant_balances() is
  'Your merchant wallet per currency (the sum of its shards): what your sales earned, less refunds and payouts.';

-- The GraphQL mutation `merchantPayout`: moves money from the caller's
-- merchant wallet to their own user wallet (same currency) in one entry over
-- the shards; from there requestWithdrawal pays it out to a bank account with
-- the withdrawal machinery unchanged (limits, holds, Revio payouts, failures).
create or replace function app_public.merchant_payout(currency text, amount bigint, idempotency_key text)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_merchant uuid := commerce.assert_merchant();
  v_entry_id uuid := uuidv7();
  v_first uuid;
  v_wallet uuid;
begin
  perform ledger.assert_amount(merchant_payout.amount);
  perform ledger.assert_currency(merchant_payout.currency);
  v_first := app_private.idempotency_claim('merchant:' || v_merchant, merchant_payout.idempotency_key, 'merchant_payout',
    jsonb_build_object('currency', merchant_payout.currency, 'amount', merchant_payout.amount), v_entry_id);
  if v_first is not null then
    return v_first;
  end if;
  v_wallet := ledger.open_wallet(v_merchant, merchant_payout.currency);
  perform ledger.post_entry('transfer',
    commerce.merchant_debit_legs(v_merchant, merchant_payout.currency, merchant_payout.amount, v_wallet),
    'Merchant payout to own wallet', jsonb_build_object('merchant_id', v_merchant),
    'merchant:' || v_merchant || '/' || merchant_payout.idempotency_key, null, v_entry_id);
  return v_entry_id;
end;
$$;
comment on function app_public.merchant_payout(text, bigint, text) is
  E'Moves `amount` minor units from your merchant wallet to your own wallet of that currency (returns the entry id); '
  'withdraw from there with requestWithdrawal. Repeating a request with the same `idempotencyKey` moves nothing more.';

revoke all on function commerce.merchant_account(uuid, text) from public;
revoke all on function commerce.merchant_debit_legs(uuid, text, bigint, uuid) from public;
revoke all on function app_public.my_merchant_balances() from public;
revoke all on function app_public.merchant_payout(text, bigint, text) from public;
grant execute on function app_public.my_merchant_balances() to app_user;
grant execute on function app_public.merchant_payout(text, bigint, text) to app_user;

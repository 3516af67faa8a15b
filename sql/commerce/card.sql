-- Purchase by card: the order is created `awaiting_payment` with its stock
-- taken, and a deposit of the order's total into the buyer's wallet is
-- started with the existing deposit machinery (app_private.create_deposit:
-- Revio checkout, webhooks, reconciliation). When the deposit becomes paid,
-- in the same transaction as the credit, a trigger pays the order from the
-- wallet (buyer → merchant + fee). When the deposit fails, is cancelled or
-- expires, the trigger releases the stock. The money thus passes through the
-- buyer's wallet, where it stays if the order can no longer be paid (e.g.
-- the wallet was frozen meanwhile): nothing is lost, the order is `failed`.

create or replace function app_public.purchase_by_card(items app_public.order_item[], idempotency_key text)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_order app_public.orders;
  v_res record;
  v_wallet uuid;
  v_deposit app_public.deposits;
begin
  if v_caller is null then
    raise exception 'Sign in to buy' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_res
    from commerce.create_order(v_caller, commerce.normalise_items(purchase_by_card.items), 'awaiting_payment', 'card',
                               purchase_by_card.idempotency_key) o;
  v_order := v_res.result;
  if not v_res.created then
    return v_order;
  end if;
  v_wallet := ledger.open_wallet(v_caller, v_order.currency);
  v_deposit := app_private.create_deposit(v_caller, v_wallet, v_order.total, 'order:' || v_order.id);
  update app_public.orders o set deposit_id = v_deposit.id where o.id = v_order.id returning * into v_order;
  return v_order;
end;
$$;
comment on function app_public.purchase_by_card(app_public.order_item[], text) is
  E'Buys `items` by card through Revio''s checkout: the order is `awaiting_payment` with the stock reserved, and '
  '`deposit` (poll it for `checkoutUrl`) collects the money. When Revio reports the payment the order becomes `paid`; '
  'if the checkout fails or expires the order is `failed`/`expired` and the stock comes back. Deposit limits apply.';

-- After a deposit's status changes: settle the order it pays, if any.
create or replace function commerce.tg_deposit_settles_order()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  select o.* into v_order from app_public.orders o where o.deposit_id = new.id for update;
  if v_order.id is null or v_order.status <> 'awaiting_payment' then
    return null;
  end if;
  if new.status = 'paid' then
    begin
      perform commerce.pay_order(v_order);
    exception when sqlstate 'PW101' or sqlstate 'PW102' or sqlstate 'PW106' then
      -- The credit stands (it happened at Revio); only the order fails.
      perform commerce.release_order(v_order.id, 'failed');
    end;
  elsif new.status in ('failed', 'cancelled', 'expired') then
    perform commerce.release_order(v_order.id, case when new.status = 'expired' then 'expired' else 'failed' end::app_public.order_status);
  end if;
  return null;
end;
$$;
drop trigger if exists _500_settle_order on app_public.deposits;
create trigger _500_settle_order after update of status on app_public.deposits
  for each row when (old.status is distinct from new.status)
  execute function commerce.tg_deposit_settles_order();

revoke all on function app_public.purchase_by_card(app_public.order_item[], text) from public;
revoke all on function commerce.tg_deposit_settles_order() from public;
grant execute on function app_public.purchase_by_card(app_public.order_item[], text) to app_user;

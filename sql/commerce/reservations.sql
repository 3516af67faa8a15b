-- Reservations (tickets): reserveItems takes the stock and places a ledger
-- hold on the buyer's wallet for reservation_seconds (default 600);
-- confirmReservation turns it into a paid order; an unconfirmed one expires:
-- the worker (commerce_expire_reservations, every minute) and a lazy check
-- (take_stock, confirmReservation) give the stock and the money back.
--
-- Exactly once: confirm, cancel and expiry all lock the order row first and
-- act only on status 'reserved', deciding by expires_at against their own
-- transaction's clock. Whoever locks first wins; the other sees the new
-- status and does nothing. Lock order: order → products → accounts.
--
-- The ledger hold expires an hour after the reservation, so the ledger's own
-- expiry job never races ours; it only frees the money if commerce expiry is
-- down for that long.

-- Releases an unpaid order (reserved or awaiting payment, already locked):
-- stock back, hold released if still open, status set. Returns the order.
create or replace function commerce.release_order(p_order_id uuid, p_status app_public.order_status)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  select o.* into v_order from app_public.orders o where o.id = p_order_id for update;
  if v_order.status not in ('reserved', 'awaiting_payment') then
    return v_order;  -- already decided
  end if;
  perform commerce.return_stock(v_order.id);
  if v_order.hold_id is not null and exists (select from ledger.holds h where h.id = v_order.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_order.hold_id);
  end if;
  update app_public.orders o set status = p_status, closed_at = now() where o.id = v_order.id
  returning * into v_order;
  return v_order;
end;
$$;

-- Expires up to p_limit overdue reservations (of p_products only, if given);
-- returns how many. Rows another transaction holds (a confirmation under
-- way) are skipped: that transaction decides them. SECURITY DEFINER so that
-- the worker needs EXECUTE on this function only (the narrow app_worker role).
create or replace function commerce.expire_reservations(p_limit int default 100, p_products uuid[] default null)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
  v_count int := 0;
begin
  for v_id in
    select o.id from app_public.orders o
     where o.status = 'reserved' and o.expires_at <= now()
       and (p_products is null or exists (select from app_public.order_lines l where l.order_id = o.id and l.product_id = any (p_products)))
     order by o.expires_at
     limit p_limit
       for update skip locked
  loop
    perform commerce.release_order(v_id, 'expired');
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

-- The GraphQL mutation `reserveItems`.
create or replace function app_public.reserve_items(items app_public.order_item[], idempotency_key text)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_seconds bigint := coalesce(commerce.setting('reservation_seconds'), 600);
  v_order app_public.orders;
  v_res record;
  v_wallet uuid;
  v_hold uuid;
begin
  if v_caller is null then
    raise exception 'Sign in to reserve' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_res
    from commerce.create_order(v_caller, commerce.normalise_items(reserve_items.items), 'reserved', 'wallet',
                               reserve_items.idempotency_key) o;
  v_order := v_res.result;
  if not v_res.created then
    return v_order;
  end if;
  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = v_caller and a.currency = v_order.currency;
  if v_wallet is null then
    raise exception 'You have no % wallet', v_order.currency using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  v_hold := ledger.place_hold(v_wallet, v_order.total, now() + make_interval(secs => v_seconds) + interval '1 hour',
                              'Reservation ' || v_order.id);
  update app_public.orders o set hold_id = v_hold, expires_at = now() + make_interval(secs => v_seconds)
   where o.id = v_order.id
  returning * into v_order;
  return v_order;
end;
$$;
comment on function app_public.reserve_items(app_public.order_item[], text) is
  E'Reserves `items` for you for a few minutes (10 by default; see `expiresAt`): the stock is taken and the price is held '
  'on your wallet. confirmReservation pays the merchant; otherwise the reservation expires and both come back. '
  'Repeating a request with the same `idempotencyKey` returns the first reservation.';

-- The caller's order, locked; someone else's is reported as missing.
create or replace function commerce.lock_buyer_order(p_buyer uuid, p_order_id uuid)
returns app_public.orders
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders;
begin
  if p_buyer is null then
    raise exception 'Sign in first' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  select o.* into v_order from app_public.orders o where o.id = p_order_id and o.buyer_id = p_buyer for update;
  if v_order.id is null then
    raise exception 'Order % not found', p_order_id using errcode = 'PW530'; -- ORDER_NOT_FOUND
  end if;
  return v_order;
end;
$$;

-- The GraphQL mutation `confirmReservation`: pays a reservation (releasing
-- its hold and posting the order's entry in the same transaction: a hold is
-- captured to one account, the order pays the merchant and the fee). An
-- overdue reservation is expired right here and returned as `expired`.
create or replace function app_public.confirm_reservation(order_id uuid)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders := commerce.lock_buyer_order(app_public.current_user_id(), confirm_reservation.order_id);
begin
  if v_order.status <> 'reserved' then
    if v_order.status in ('paid', 'refunded', 'expired', 'cancelled') and v_order.hold_id is not null then
      return v_order;  -- decided before: a repeated confirmation changes nothing
    end if;
    raise exception 'Order % is not a reservation', v_order.id using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;
  if v_order.expires_at <= now() then
    return commerce.release_order(v_order.id, 'expired');
  end if;
  -- Lock the three accounts of the entry in id order first (as post_entry
  -- would), so that releasing the hold does not lock the buyer's wallet out of order.
  perform from ledger.accounts a
   where a.id in (select h.account_id from ledger.holds h where h.id = v_order.hold_id)
      or a.id = commerce.merchant_account(v_order.merchant_id, v_order.currency)
      or a.id = ledger.system_account('fees', v_order.currency)
   order by a.id for update;
  if exists (select from ledger.holds h where h.id = v_order.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_order.hold_id);
  end if;
  if exists (select from app_public.merchants m where m.id = v_order.merchant_id and m.status <> 'active') then
    raise exception 'The merchant is suspended' using errcode = 'PW512'; -- PRODUCT_NOT_AVAILABLE
  end if;
  return commerce.pay_order(v_order);
end;
$$;
comment on function app_public.confirm_reservation(uuid) is
  'Pays your reservation: the order becomes `paid`. A reservation past `expiresAt` comes back `expired` (stock and money released); confirming again changes nothing.';

-- The GraphQL mutation `cancelReservation`.
create or replace function app_public.cancel_reservation(order_id uuid)
returns app_public.orders
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_order app_public.orders := commerce.lock_buyer_order(app_public.current_user_id(), cancel_reservation.order_id);
begin
  if v_order.status <> 'reserved' then
    if v_order.status in ('expired', 'cancelled') then
      return v_order;
    end if;
    raise exception 'Order % is not an open reservation', v_order.id using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;
  return commerce.release_order(v_order.id, case when v_order.expires_at <= now() then 'expired' else 'cancelled' end::app_public.order_status);
end;
$$;
comment on function app_public.cancel_reservation(uuid) is 'Gives back a reservation you no longer want: stock and money are released at once.';

revoke all on function commerce.release_order(uuid, app_public.order_status) from public;
revoke all on function commerce.expire_reservations(int, uuid[]) from public;
revoke all on function commerce.lock_buyer_order(uuid, uuid) from public;
revoke all on function app_public.reserve_items(app_public.order_item[], text) from public;
revoke all on function app_public.confirm_reservation(uuid) from public;
revoke all on function app_public.cancel_reservation(uuid) from public;
grant execute on function app_public.reserve_items(app_public.order_item[], text) to app_user;
grant execute on function app_public.confirm_reservation(uuid) to app_user;
grant execute on function app_public.cancel_reservation(uuid) to app_user;

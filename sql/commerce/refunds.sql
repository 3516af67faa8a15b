-- Refunds: the merchant gives back some or all units of a paid order, from
-- the merchant wallet to the buyer's wallet (one entry over the merchant's
-- shards, see merchant_wallet.sql), optionally putting the units back on
-- sale. The platform keeps its fee (the merchant bears it). Card-paid orders
-- are refunded to the buyer's wallet too: the Revio refund machinery is being
-- built on another branch; once it lands, card orders can go back to the card.

create or replace function app_public.refund_order(
  order_id uuid,
  idempotency_key text,
  items app_public.order_item[] default null,
  restock boolean default false,
  reason text default null
)
returns app_public.order_refunds
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_merchant uuid := commerce.assert_merchant();
  v_order app_public.orders;
  v_items app_public.order_item[];
  v_refund app_public.order_refunds;
  v_amount bigint;
  v_wallet uuid;
  v_entry_id uuid := uuidv7();
begin
  if refund_order.idempotency_key is null or length(refund_order.idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  if length(refund_order.reason) > 500 then
    raise exception 'A reason has at most 500 characters' using errcode = 'PW540'; -- REFUND_INVALID
  end if;
  select o.* into v_order from app_public.orders o
   where o.id = refund_order.order_id and o.merchant_id = v_merchant for update;
  if v_order.id is null then
    raise exception 'Order % not found', refund_order.order_id using errcode = 'PW530'; -- ORDER_NOT_FOUND
  end if;
  -- The order lock serialises refunds of one order: a repeat finds the first.
  select r.* into v_refund from app_public.order_refunds r
   where r.order_id = v_order.id and r.idempotency_key = refund_order.idempotency_key;
  if v_refund.id is not null then
    if v_refund.restock <> coalesce(refund_order.restock, false)
       or (refund_order.items is not null and v_refund.items <> commerce.items_request(commerce.normalise_items(refund_order.items))) then
      raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
    end if;
    return v_refund;
  end if;
  if v_order.status <> 'paid' then
    raise exception 'Only paid orders can be refunded; this one is %', v_order.status using errcode = 'PW531'; -- ORDER_STATE_INVALID
  end if;

  -- Units to refund: the given ones, or everything not refunded yet.
  if refund_order.items is null then
    select array_agg(row(l.product_id, l.quantity - l.refunded_quantity)::app_public.order_item order by l.product_id) into v_items
      from app_public.order_lines l where l.order_id = v_order.id and l.quantity > l.refunded_quantity;
  else
    v_items := commerce.normalise_items(refund_order.items);
  end if;
  select sum(i.quantity * l.unit_price)::bigint into v_amount
    from unnest(v_items) i join app_public.order_lines l on l.order_id = v_order.id and l.product_id = i.product_id
   where i.quantity <= l.quantity - l.refunded_quantity
  having count(*) = cardinality(v_items);
  if v_amount is null then
    raise exception 'Each refunded item must be a line of the order with at most its unrefunded quantity'
      using errcode = 'PW540'; -- REFUND_INVALID
  end if;

  update app_public.order_lines l
     set refunded_quantity = l.refunded_quantity + i.quantity,
         restocked_quantity = l.restocked_quantity + case when refund_order.restock then i.quantity else 0 end
    from unnest(v_items) i
   where l.order_id = v_order.id and l.product_id = i.product_id;
  if refund_order.restock then
    perform commerce.return_stock(v_order.id, v_items);  -- products before accounts
  end if;

  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = v_order.buyer_id and a.currency = v_order.currency;
  perform ledger.post_entry('refund', commerce.merchant_debit_legs(v_merchant, v_order.currency, v_amount, v_wallet),
                            'Refund of order ' || v_order.id,
                            jsonb_build_object('order_id', v_order.id, 'merchant_id', v_merchant, 'buyer_id', v_order.buyer_id),
                            'merchant:' || v_merchant || '/refund/' || v_order.id || '/' || refund_order.idempotency_key, null, v_entry_id);

  insert into app_public.order_refunds (order_id, amount, items, restock, reason, idempotency_key, entry_id)
  values (v_order.id, v_amount, commerce.items_request(v_items), coalesce(refund_order.restock, false),
          nullif(btrim(refund_order.reason), ''), refund_order.idempotency_key, v_entry_id)
  returning * into v_refund;
  update app_public.orders o
     set refunded = o.refunded + v_amount,
         status = case when o.refunded + v_amount = o.total then 'refunded' else o.status end,
         closed_at = case when o.refunded + v_amount = o.total then now() else o.closed_at end
   where o.id = v_order.id;
  return v_refund;
end;
$$;
comment on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) is
  E'Refunds your customer (merchants only): `items` (default: every unit not yet refunded) at the prices paid, from your '
  'merchant wallet to the buyer''s wallet; `restock: true` puts the units back on sale. The platform fee is not returned. '
  'Card-paid orders are refunded to the buyer''s wallet. Repeating a request with the same `idempotencyKey` returns the first refund.';

revoke all on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) from public;
grant execute on function app_public.refund_order(uuid, text, app_public.order_item[], boolean, text) to app_user;

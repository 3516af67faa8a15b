-- Reconciliation. revio.reconcile_pending (cron) asks Revio about deposits
-- and withdrawals still open after a while and feeds each answer through
-- receive_revio_event, exactly like a webhook; revio.reconcile_daily reads
-- back recent objects and records every difference between Revio's view and
-- the ledger's Revio clearing account in app_private.revio_discrepancies
-- (audit.revio_discrepancies).

-- Open deposits and withdrawals that Revio knows about and that nobody has
-- asked about for p_min_age: the oldest first.
create or replace function app_private.revio_objects_to_reconcile(p_min_age interval, p_limit int default 100)
returns table (kind text, id uuid, revio_id text)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  (select 'deposit', d.id, d.revio_purchase_id
     from app_public.deposits d
    where d.status in ('pending', 'awaiting_payment') and d.revio_purchase_id is not null
      and coalesce(d.reconciled_at, d.created_at) <= now() - p_min_age
    order by coalesce(d.reconciled_at, d.created_at)
    limit p_limit)
  union all
  (select 'withdrawal', w.id, w.revio_payout_id
     from app_public.withdrawals w
    where w.status in ('requested', 'submitted') and w.revio_payout_id is not null
      and coalesce(w.reconciled_at, w.created_at) <= now() - p_min_age
    order by coalesce(w.reconciled_at, w.created_at)
    limit p_limit);
$$;

-- Applies what Revio says about one object (through receive_revio_event, as
-- a webhook would be) and notes that it was asked. Returns the outcome.
create or replace function app_private.reconcile_revio_object(p_kind text, p_id uuid, p_body text)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_outcome text := app_private.receive_revio_event(p_body, true, now(), '{}', 'reconciliation');
begin
  if p_kind = 'deposit' then
    update app_public.deposits set reconciled_at = now() where id = p_id;
  else
    update app_public.withdrawals set reconciled_at = now() where id = p_id;
  end if;
  return v_outcome;
end;
$$;

-- Every deposit and withdrawal linked to a Revio object and created since
-- p_since: what the daily check reads back from Revio.
create or replace function app_private.revio_objects_for_daily_check(p_since timestamptz)
returns table (kind text, id uuid, revio_id text)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select 'deposit', d.id, d.revio_purchase_id from app_public.deposits d
   where d.revio_purchase_id is not null and d.created_at >= p_since
  union all
  select 'withdrawal', w.id, w.revio_payout_id from app_public.withdrawals w
   where w.revio_payout_id is not null and w.created_at >= p_since;
$$;

-- Compares Revio's answers (p_observations: [{kind, id, found, status,
-- amount, currency, fee_amount, net_amount}], one per object of
-- revio_objects_for_daily_check) with the ledger, writes each difference not
-- already open, and returns how many it wrote. Kinds: missing_at_revio,
-- paid_not_credited, credited_not_paid, payout_not_recorded,
-- paid_out_not_confirmed, amount_differs, fee_differs (Revio's reported fee
-- against the one we booked), taken_back_differs (Revio's refundable amount
-- against the deposit less what we applied of refunds and chargebacks: one
-- whose webhook never came shows here), clearing_total (per currency, Revio's net
-- settlement for these objects — amount less fee — against the clearing
-- postings of their credit and fee entries) and clearing_unexplained (the
-- clearing account's whole balance against every credited deposit less fees,
-- refunds and reversals, and every paid withdrawal plus its fee).
create or replace function app_private.record_revio_reconciliation(p_observations jsonb)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run_id uuid;
  v_count int;
begin
  insert into app_private.reconciliation_runs (kind, objects) values ('daily', jsonb_array_length(p_observations))
  returning id into v_run_id;

  with obs as (
    select o->>'kind' as kind, (o->>'id')::uuid as id, coalesce((o->>'found')::boolean, false) as is_found,
           o->>'status' as status, app_private.jsonb_cents(o->'amount') as amount, o->>'currency' as currency,
           app_private.jsonb_cents(o->'fee_amount') as revio_fee, app_private.jsonb_cents(o->'net_amount') as revio_net,
           app_private.jsonb_cents(o->'refundable_amount') as revio_refundable
      from jsonb_array_elements(p_observations) o
  ), ours as (
    -- Each object as the ledger sees it: the amount its entry moved through clearing.
    select obs.*, d.revio_purchase_id as revio_id, d.currency as our_currency, d.amount as our_amount,
           d.status::text as our_status, d.status = 'paid' as settled,
           obs.status in ('paid', 'cleared', 'settled', 'refunded', 'pending_refund', 'chargeback') as revio_settled,
           -(select sum(p.amount) from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id in (d.credit_entry_id, d.fee_entry_id) and a.kind = 'revio_clearing')::bigint as ledger_net,
           d.fee_amount as our_fee,
           d.amount - d.refunded_amount - d.reversed_amount as our_left
      from obs join app_public.deposits d on d.id = obs.id where obs.kind = 'deposit'
    union all
    select obs.*, w.revio_payout_id, w.currency, w.amount, w.status::text, w.status = 'paid',
           obs.status = 'success',
           -(select sum(p.amount) from ledger.postings p join ledger.accounts a on a.id = p.account_id
              where p.entry_id in (w.payout_entry_id, w.fee_entry_id) and a.kind = 'revio_clearing')::bigint,
           w.fee_amount, null::bigint
      from obs join app_public.withdrawals w on w.id = obs.id where obs.kind = 'withdrawal'
  ), checked as (
    select o.kind, o.id, o.revio_id, o.our_currency as currency, coalesce(o.ledger_net, 0) as ledger_amount,
           -- Net settlement: a purchase settles amount − fee; a payout costs amount + fee.
           case when o.revio_settled then case o.kind when 'deposit' then coalesce(o.revio_net, o.amount - coalesce(o.revio_fee, 0))
                                                      else -(o.amount + coalesce(o.revio_fee, 0)) end else 0 end as revio_amount,
           case
             when not o.is_found then 'missing_at_revio'
             when o.revio_settled and not o.settled then case o.kind when 'deposit' then 'paid_not_credited' else 'payout_not_recorded' end
             when o.settled and not o.revio_settled then case o.kind when 'deposit' then 'credited_not_paid' else 'paid_out_not_confirmed' end
             when o.settled and (o.amount is distinct from o.our_amount or o.currency is distinct from o.our_currency) then 'amount_differs'
             when o.settled and o.revio_fee is not null and o.revio_fee is distinct from coalesce(o.our_fee, 0) then 'fee_differs'
             -- A refund or chargeback applied on one side only (e.g. its webhook never came).
             when o.settled and o.kind = 'deposit' and o.revio_refundable is not null and o.revio_refundable <> o.our_left then 'taken_back_differs'
           end as problem,
           format('Revio: %s %s (fee %s%s); pgwallet: %s %s (fee %s%s)', coalesce(o.status, 'not found'),
                  coalesce(app_private.format_money(o.amount, coalesce(o.currency, '???')), ''),
                  coalesce(app_private.format_money(o.revio_fee, coalesce(o.currency, '???')), 'not reported'),
                  coalesce(', refundable ' || app_private.format_money(o.revio_refundable, coalesce(o.currency, '???')), ''),
                  o.our_status, app_private.format_money(o.our_amount, o.our_currency),
                  app_private.format_money(coalesce(o.our_fee, 0), o.our_currency),
                  coalesce(', left after refunds and chargebacks ' || app_private.format_money(o.our_left, o.our_currency), '')) as detail
      from ours o
  ), per_object as (
    select f.problem as kind, case f.kind when 'deposit' then 'purchase' else 'payout' end as object_type, f.revio_id as object_id,
           case f.kind when 'deposit' then f.id end as deposit_id, case f.kind when 'withdrawal' then f.id end as withdrawal_id,
           f.currency, f.ledger_amount, f.revio_amount, f.detail
      from checked f where f.problem is not null
  ), totals as (
    select 'clearing_total' as kind, null::text as object_type, null::text as object_id, null::uuid as deposit_id,
           null::uuid as withdrawal_id, f.currency, sum(f.ledger_amount)::bigint as ledger_amount,
           sum(f.revio_amount)::bigint as revio_amount,
           format('For the %s objects checked, Revio''s net is %s and the clearing postings net %s', count(*),
                  app_private.format_money(sum(f.revio_amount)::bigint, f.currency),
                  app_private.format_money(sum(f.ledger_amount)::bigint, f.currency)) as detail
      from checked f group by f.currency having sum(f.ledger_amount) <> sum(f.revio_amount)
  ), unexplained as (
    select 'clearing_unexplained', null::text, null::text, null::uuid, null::uuid, c.currency,
           -c.balance as ledger_amount, coalesce(e.expected, 0) as revio_amount,
           format('The Revio clearing account holds %s but credited deposits (less fees, refunds and reversals) less paid withdrawals (and their fees) come to %s',
                  app_private.format_money(-c.balance, c.currency), app_private.format_money(coalesce(e.expected, 0), c.currency))
      from (select a.currency, sum(a.balance)::bigint as balance from ledger.accounts a
             where a.kind = 'revio_clearing' group by a.currency) c
      left join (select x.currency, sum(x.amount)::bigint as expected from (
                   select d.currency, d.amount - coalesce(d.fee_amount, 0) - d.refunded_amount - d.reversed_amount as amount
                     from app_public.deposits d where d.status = 'paid'
                   union all
                   select w.currency, -(w.amount + coalesce(w.fee_amount, 0)) from app_public.withdrawals w where w.status = 'paid') x
                  group by x.currency) e on e.currency = c.currency
     where -c.balance <> coalesce(e.expected, 0)
  ), everything as (
    select * from per_object union all select * from totals union all select * from unexplained
  )
  insert into app_private.revio_discrepancies (run_id, kind, object_type, object_id, deposit_id, withdrawal_id, currency,
                                               ledger_amount, revio_amount, detail)
  select v_run_id, e.kind, e.object_type, e.object_id, e.deposit_id, e.withdrawal_id, e.currency, e.ledger_amount, e.revio_amount, e.detail
    from everything e
   where not exists (select from app_private.revio_discrepancies r
                      where r.resolved_at is null and r.kind = e.kind
                        and r.object_id is not distinct from e.object_id and r.currency is not distinct from e.currency
                        and r.ledger_amount is not distinct from e.ledger_amount and r.revio_amount is not distinct from e.revio_amount);
  get diagnostics v_count = row_count;
  update app_private.reconciliation_runs set discrepancies = v_count where id = v_run_id;
  return v_count;
end;
$$;

revoke all on function app_private.revio_objects_to_reconcile(interval, int) from public;
revoke all on function app_private.reconcile_revio_object(text, uuid, text) from public;
revoke all on function app_private.revio_objects_for_daily_check(timestamptz) from public;
revoke all on function app_private.record_revio_reconciliation(jsonb) from public;

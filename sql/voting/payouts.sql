-- Payouts to organisers, through the existing withdrawal flow: an owner of
-- the organisation moves an event's takings from the event account into
-- their own wallet (one entry, kind event_payout), then withdraws it with
-- requestWithdrawal like any other money: the same hold, Revio payout,
-- limits, retries and reconciliation, with nothing new to get wrong there.
-- Allowed once the event is closed and no flagged vote awaits review (a
-- rejected vote is refunded from the event account).

-- The event account's balance, summed over its shards.
create or replace function app_private.event_balance(p_event_id uuid)
returns bigint
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(sum(a.balance), 0)::bigint
    from app_private.event_accounts ea join ledger.accounts a on a.id = ea.account_id
   where ea.event_id = p_event_id;
$$;

-- The GraphQL mutation `withdrawEventFunds`.
create or replace function app_public.withdraw_event_funds(event_id uuid, amount bigint, idempotency_key text)
returns app_public.event_payouts
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_event app_public.events;
  v_entry_id uuid := uuidv7();
  v_first uuid;
  v_wallet uuid;
  v_legs ledger.leg[] := '{}';
  v_left bigint := withdraw_event_funds.amount;
  v_shard record;
  v_row app_public.event_payouts;
begin
  perform ledger.assert_amount(withdraw_event_funds.amount);
  v_first := app_private.idempotency_claim('user:' || v_user, withdraw_event_funds.idempotency_key, 'withdraw_event_funds',
    jsonb_build_object('event', withdraw_event_funds.event_id, 'amount', withdraw_event_funds.amount), v_entry_id);
  if v_first is not null then
    select p.* into v_row from app_public.event_payouts p where p.entry_id = v_first;
    return v_row;
  end if;
  -- Locked: two payouts of one event run one after the other.
  select e.* into v_event from app_public.events e where e.id = withdraw_event_funds.event_id for update;
  if not found then
    raise exception 'Event % not found', withdraw_event_funds.event_id using errcode = 'PW608'; -- EVENT_NOT_FOUND
  end if;
  perform app_private.assert_member(v_user, v_event.organisation_id, true);
  if v_event.status not in ('closed', 'published')
     or exists (select from app_public.votes v where v.event_id = v_event.id and v.status = 'flagged') then
    raise exception 'Event money can be withdrawn once the event is closed and every flagged vote is reviewed'
      using errcode = 'PW615'; -- EVENT_PAYOUT_NOT_ALLOWED
  end if;
  if app_private.event_balance(v_event.id) < withdraw_event_funds.amount then
    raise exception 'The event account holds less than %', withdraw_event_funds.amount using errcode = 'PW101'; -- INSUFFICIENT_FUNDS
  end if;
  -- Take from the fullest shards first.
  for v_shard in
    select a.id, a.balance from app_private.event_accounts ea join ledger.accounts a on a.id = ea.account_id
     where ea.event_id = v_event.id and a.balance > 0 order by a.balance desc, a.id
  loop
    exit when v_left = 0;
    v_legs := v_legs || row(v_shard.id, -least(v_left, v_shard.balance))::ledger.leg;
    v_left := v_left - least(v_left, v_shard.balance);
  end loop;
  v_wallet := ledger.open_wallet(v_user, v_event.currency);
  perform ledger.post_entry('event_payout', v_legs || row(v_wallet, withdraw_event_funds.amount)::ledger.leg,
    'Event takings: ' || v_event.name, jsonb_build_object('event', v_event.id),
    'user:' || v_user || '/' || withdraw_event_funds.idempotency_key, null, v_entry_id);
  insert into app_public.event_payouts (event_id, organisation_id, user_id, amount, entry_id, idempotency_key)
  values (v_event.id, v_event.organisation_id, v_user, withdraw_event_funds.amount, v_entry_id, withdraw_event_funds.idempotency_key)
  returning * into v_row;
  return v_row;
end;
$$;
comment on function app_public.withdraw_event_funds(uuid, bigint, text) is
  E'Moves `amount` of a closed event''s takings into your wallet (organisation owners only); withdraw it to a bank with requestWithdrawal. '
  'Refused with EVENT_PAYOUT_NOT_ALLOWED while the event is open or flagged votes await review.';

-- Computed field Event.balance for members: the takings still in the event account.
create or replace function app_public.events_balance(e app_public.events)
returns bigint
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_private.event_balance(e.id) where e.organisation_id in (select app_private.my_organisation_ids());
$$;
comment on function app_public.events_balance(app_public.events) is
  'Minor units in the event account (votes paid, less fees, refunds and payouts); null unless you are a member of the organisation.';

revoke all on function app_private.event_balance(uuid) from public;
revoke all on function app_public.withdraw_event_funds(uuid, bigint, text) from public;
revoke all on function app_public.events_balance(app_public.events) from public;
grant execute on function app_public.withdraw_event_funds(uuid, bigint, text) to app_user;
grant execute on function app_public.events_balance(app_public.events) to app_anonymous;

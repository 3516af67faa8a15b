-- Events, categories and contestants. Members of an organisation create and
-- edit them through the generated CRUD mutations (RLS and column grants in
-- policies.sql decide who and what); the triggers here fill in the tenant
-- ids, open the event's ledger accounts and refuse edits that would change
-- the rules of an event already running. State changes go through
-- set_event_status: draft → open → closed → published.

-- Opens the event's ledger account shards, all at once (so the vote path never
-- creates accounts and never races to).
create or replace function app_private.tg_events_open_accounts()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account uuid;
begin
  for i in 0 .. new.account_shards - 1 loop
    insert into ledger.accounts (kind, currency, shard) values ('event_account', new.currency, i) returning id into v_account;
    insert into app_private.event_accounts (event_id, shard, account_id) values (new.id, i, v_account);
  end loop;
  return null;
end;
$$;
drop trigger if exists _500_open_accounts on app_public.events;
create trigger _500_open_accounts after insert on app_public.events
  for each row execute function app_private.tg_events_open_accounts();

-- New events start as drafts; the price, currency, caps, weights and fraud
-- rules may change only while the event is a draft (voters and the published
-- result rely on them).
create or replace function app_private.tg_events_guard()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    new.status := 'draft';
    return new;
  end if;
  if new.organisation_id <> old.organisation_id or new.currency <> old.currency or new.account_shards <> old.account_shards then
    raise exception 'An event''s organisation, currency and account cannot change' using errcode = 'PW611'; -- EVENT_NOT_EDITABLE
  end if;
  if old.status <> 'draft' and (row(new.vote_price, new.allow_free_votes, new.max_votes_per_request, new.max_votes_per_voter_per_day,
        new.max_votes_per_category_per_day, new.public_weight, new.judge_weight, new.opens_at, new.platform_fee_bps)
      is distinct from row(old.vote_price, old.allow_free_votes, old.max_votes_per_request, old.max_votes_per_voter_per_day,
        old.max_votes_per_category_per_day, old.public_weight, old.judge_weight, old.opens_at, old.platform_fee_bps)) then
    raise exception 'Price, caps, weights and opening time can change only while the event is a draft'
      using errcode = 'PW611'; -- EVENT_NOT_EDITABLE
  end if;
  if old.status in ('closed', 'published') and new.closes_at <> old.closes_at then
    raise exception 'A closed event''s closing time cannot change' using errcode = 'PW611'; -- EVENT_NOT_EDITABLE
  end if;
  return new;
end;
$$;
drop trigger if exists _200_guard on app_public.events;
create trigger _200_guard before insert or update on app_public.events
  for each row execute function app_private.tg_events_guard();

-- Categories and contestants take their event's (and category's) tenant ids,
-- whatever the client sent; new ones only while the event is a draft.
create or replace function app_private.tg_categories_fill()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event app_public.events;
begin
  select e.* into v_event from app_public.events e where e.id = new.event_id;
  if not found then
    raise exception 'Event % not found', new.event_id using errcode = 'PW608'; -- EVENT_NOT_FOUND
  end if;
  if tg_op = 'INSERT' and v_event.status <> 'draft' then
    raise exception 'Categories can be added only while the event is a draft' using errcode = 'PW611'; -- EVENT_NOT_EDITABLE
  end if;
  new.organisation_id := v_event.organisation_id;
  return new;
end;
$$;
drop trigger if exists _100_fill on app_public.categories;
create trigger _100_fill before insert or update of event_id on app_public.categories
  for each row execute function app_private.tg_categories_fill();

create or replace function app_private.tg_contestants_fill()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_category record;
begin
  select c.event_id, c.organisation_id, e.status into v_category
    from app_public.categories c join app_public.events e on e.id = c.event_id
   where c.id = new.category_id;
  if not found then
    raise exception 'Category % not found', new.category_id using errcode = 'PW608'; -- EVENT_NOT_FOUND
  end if;
  if tg_op = 'INSERT' and v_category.status <> 'draft' then
    raise exception 'Contestants can be added only while the event is a draft' using errcode = 'PW611'; -- EVENT_NOT_EDITABLE
  end if;
  new.event_id := v_category.event_id;
  new.organisation_id := v_category.organisation_id;
  return new;
end;
$$;
drop trigger if exists _100_fill on app_public.contestants;
create trigger _100_fill before insert or update of category_id on app_public.contestants
  for each row execute function app_private.tg_contestants_fill();

-- The GraphQL mutation `setEventStatus`: draft → open → closed → published,
-- one step at a time, by a member of the organisation. Opening needs a
-- contestant; a published event's result is final.
create or replace function app_public.set_event_status(event_id uuid, status app_public.event_status)
returns app_public.events
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_event app_public.events;
begin
  select e.* into v_event from app_public.events e where e.id = set_event_status.event_id for update;
  if not found then
    raise exception 'Event % not found', set_event_status.event_id using errcode = 'PW608'; -- EVENT_NOT_FOUND
  end if;
  perform app_private.assert_member(v_user, v_event.organisation_id);
  if (v_event.status, set_event_status.status) not in (('draft', 'open'), ('open', 'closed'), ('closed', 'published')) then
    raise exception 'An event cannot go from % to %', v_event.status, set_event_status.status
      using errcode = 'PW609'; -- EVENT_STATUS_INVALID
  end if;
  if set_event_status.status = 'open'
     and not exists (select from app_public.contestants c where c.event_id = v_event.id) then
    raise exception 'Add at least one contestant before opening the event' using errcode = 'PW609'; -- EVENT_STATUS_INVALID
  end if;
  update app_public.events e set status = set_event_status.status where e.id = v_event.id returning e.* into v_event;
  return v_event;
end;
$$;
comment on function app_public.set_event_status(uuid, app_public.event_status) is
  'Moves your organisation''s event one step: draft → open → closed → published. Votes are accepted only while it is open and between opensAt and closesAt.';

-- Cron (src/voting/tasks.ts): open events whose closing time has passed
-- become closed. Voting already stops at closes_at without this (cast_votes
-- checks the time); this makes the state say so. Returns how many closed.
create or replace function app_private.close_due_events()
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count int;
begin
  update app_public.events e set status = 'closed' where e.status = 'open' and e.closes_at <= now();
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

revoke all on function app_private.tg_events_open_accounts() from public;
revoke all on function app_private.tg_events_guard() from public;
revoke all on function app_private.tg_categories_fill() from public;
revoke all on function app_private.tg_contestants_fill() from public;
revoke all on function app_public.set_event_status(uuid, app_public.event_status) from public;
revoke all on function app_private.close_due_events() from public;
grant execute on function app_public.set_event_status(uuid, app_public.event_status) to app_user;

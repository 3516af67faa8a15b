--! Previous: sha1:5063ddabc5b61bbe6a20b3c5ac51d36564f7ef8e
--! Hash: sha1:460a613fa257d4abd639ed9c38a4b5ae82bc2367
--! Message: voting

-- ==== votes ====
-- Paid voting (issue 12): organisations (tenants), events with categories and
-- contestants, votes paid from the wallet into a per-event ledger account,
-- per-voter caps, an incrementally kept leaderboard, judges, fraud flags and
-- payouts to organisers. Functions, policies and grants: sql/voting/*.sql;
-- the DBA's view of it: docs/voting.md.

-- An event's takings live in ledger accounts of their own (sharded, like
-- system accounts, so a live final does not queue on one row lock).
alter type ledger.account_kind add value if not exists 'event_account';
alter type ledger.entry_kind add value if not exists 'vote';
alter type ledger.entry_kind add value if not exists 'event_payout';

-- System accounts are one per (kind, currency, shard); event accounts are many
-- per currency (one set of shards per event), so the uniqueness is narrowed to
-- the system kinds (ledger.system_account's ON CONFLICT names no target).
drop index if exists ledger.accounts_system_shard;
create unique index accounts_system_shard on ledger.accounts (kind, currency, shard)
  where kind in ('revio_clearing', 'withdrawals_in_flight', 'fees', 'adjustments');

do $$ begin
  create type app_public.event_status as enum ('draft', 'open', 'closed', 'published');
exception when duplicate_object then null; end $$;
do $$ begin
  create type app_public.vote_status as enum ('counted', 'flagged', 'rejected');
exception when duplicate_object then null; end $$;
do $$ begin
  create type app_public.organisation_role as enum ('owner', 'member');
exception when duplicate_object then null; end $$;

create table if not exists app_public.organisations (
  id         uuid primary key default uuidv7(),
  name       text not null constraint organisations_name_check check (length(btrim(name)) between 1 and 120),
  created_by uuid not null references app_public.users on delete restrict,
  created_at timestamptz not null default now()
);

create table if not exists app_public.organisation_members (
  organisation_id uuid not null references app_public.organisations on delete cascade,
  user_id         uuid not null references app_public.users on delete cascade,
  role            app_public.organisation_role not null default 'member',
  created_at      timestamptz not null default now(),
  primary key (organisation_id, user_id)
);
create index if not exists organisation_members_user_idx on app_public.organisation_members (user_id);

create table if not exists app_public.events (
  id                             uuid primary key default uuidv7(),
  organisation_id                uuid not null references app_public.organisations on delete restrict,
  name                           text not null constraint events_name_check check (length(btrim(name)) between 1 and 200),
  status                         app_public.event_status not null default 'draft',
  opens_at                       timestamptz not null,
  closes_at                      timestamptz not null,
  currency                       char(3) not null default 'ZAR' references ledger.currencies,
  vote_price                     bigint not null constraint events_vote_price_check check (vote_price between 0 and 100000000),
  allow_free_votes               boolean not null default false,
  -- Platform fee in basis points of each vote payment; set by the platform, not the organiser.
  platform_fee_bps               int not null default 500 check (platform_fee_bps between 0 and 10000),
  max_votes_per_request          int not null default 100 constraint events_caps_check check (max_votes_per_request between 1 and 100000),
  -- Per voter per UTC day; null = no cap.
  max_votes_per_voter_per_day    int constraint events_voter_cap_check check (max_votes_per_voter_per_day > 0),
  max_votes_per_category_per_day int constraint events_category_cap_check check (max_votes_per_category_per_day > 0),
  -- The published result: public_weight % votes share + judge_weight % mean judge score.
  public_weight                  int not null default 100,
  judge_weight                   int not null default 0,
  leaderboard_public             boolean not null default true,
  -- Fraud rules (sql/voting/fraud.sql): vote requests per voter per minute
  -- (refused above), per client address per minute (flagged above), and the
  -- account age below which votes are flagged (0 = off).
  voter_requests_per_minute      int not null default 30 check (voter_requests_per_minute > 0),
  address_requests_per_minute    int not null default 120 check (address_requests_per_minute > 0),
  new_account_age                interval not null default '0 seconds',
  account_shards                 smallint not null default 8 check (account_shards between 1 and 64),
  created_at                     timestamptz not null default now(),
  updated_at                     timestamptz not null default now(),
  constraint events_times_check check (closes_at > opens_at),
  constraint events_weights_check check (public_weight between 0 and 100 and judge_weight between 0 and 100 and public_weight + judge_weight = 100),
  constraint events_free_votes_check check (vote_price > 0 or allow_free_votes)
);
create index if not exists events_organisation_idx on app_public.events (organisation_id);
create index if not exists events_open_idx on app_public.events (closes_at) where status = 'open';
drop trigger if exists _100_timestamps on app_public.events;
create trigger _100_timestamps before insert or update on app_public.events
  for each row execute function app_private.tg__timestamps();

create table if not exists app_public.categories (
  id              uuid primary key default uuidv7(),
  event_id        uuid not null references app_public.events on delete cascade,
  organisation_id uuid not null references app_public.organisations,
  name            text not null constraint categories_name_check check (length(btrim(name)) between 1 and 200),
  position        int not null default 0,
  created_at      timestamptz not null default now(),
  unique (event_id, name)
);
create index if not exists categories_organisation_idx on app_public.categories (organisation_id);

create table if not exists app_public.contestants (
  id              uuid primary key default uuidv7(),
  category_id     uuid not null references app_public.categories on delete cascade,
  event_id        uuid not null references app_public.events on delete cascade,
  organisation_id uuid not null references app_public.organisations,
  name            text not null constraint contestants_name_check check (length(btrim(name)) between 1 and 200),
  bio             text constraint contestants_bio_check check (length(bio) <= 2000),
  created_at      timestamptz not null default now()
);
create index if not exists contestants_category_idx on app_public.contestants (category_id);
create index if not exists contestants_event_idx on app_public.contestants (event_id);
create index if not exists contestants_organisation_idx on app_public.contestants (organisation_id);

-- The shards of an event's ledger account (opened with the event).
create table if not exists app_private.event_accounts (
  event_id   uuid not null references app_public.events on delete restrict,
  shard      smallint not null,
  account_id uuid not null unique references ledger.accounts,
  primary key (event_id, shard)
);

create table if not exists app_public.votes (
  id              uuid primary key default uuidv7(),
  event_id        uuid not null references app_public.events,
  category_id     uuid not null references app_public.categories,
  contestant_id   uuid not null references app_public.contestants,
  organisation_id uuid not null references app_public.organisations,
  voter_id        uuid not null references app_public.users on delete restrict,
  count           int not null check (count > 0),
  amount          bigint not null check (amount >= 0),
  fee             bigint not null default 0 check (fee >= 0 and fee <= amount),
  entry_id        uuid unique references ledger.entries,
  status          app_public.vote_status not null,
  flag_reason     text,
  client_ip       inet,
  idempotency_key text not null check (length(idempotency_key) between 1 and 200),
  created_at      timestamptz not null default now(),
  reviewed_at     timestamptz,
  reviewed_by     uuid references app_public.users,
  refund_entry_id uuid references ledger.entries,
  constraint votes_idempotency unique (voter_id, idempotency_key),
  constraint votes_paid_has_entry check ((amount > 0) = (entry_id is not null))
);
create index if not exists votes_voter_time_idx on app_public.votes (voter_id, created_at);
create index if not exists votes_address_time_idx on app_public.votes (client_ip, created_at) where client_ip is not null;
-- Few indexes on purpose: every one is written by every vote. Recounts
-- (audit.leaderboard_drift) and per-event queries are rare and may scan.
drop index if exists app_public.votes_contestant_idx;
drop index if exists app_public.votes_event_idx;
create index if not exists votes_organisation_idx on app_public.votes (organisation_id, created_at);
create index if not exists votes_flagged_idx on app_public.votes (event_id, created_at) where status = 'flagged';

-- Votes a voter cast per UTC day, per event (scope_id = event id) and per
-- category (scope_id = category id): the caps read and bump these rows under
-- the (voter, event) lock.
create table if not exists app_private.voter_day_counts (
  voter_id uuid not null,
  event_id uuid not null,
  scope_id uuid not null,
  day      date not null,
  votes    int not null check (votes >= 0),
  primary key (voter_id, event_id, scope_id, day)
);

-- Counted votes per contestant, split over shards so a hot contestant's
-- votes do not queue on one row; the leaderboard sums a contestant's shards.
create table if not exists app_private.tally_shards (
  contestant_id uuid not null references app_public.contestants on delete cascade,
  shard         smallint not null,
  category_id   uuid not null,
  votes         bigint not null default 0 check (votes >= 0),
  primary key (contestant_id, shard)
) with (fillfactor = 50);
create index if not exists tally_shards_category_idx on app_private.tally_shards (category_id);

-- When each category's leaderboard was last announced (NOTIFY): at most one
-- notification per category per 100 ms, because every NOTIFY takes a
-- database-wide lock at commit (it serialised votes at ~100/s).
create table if not exists app_private.leaderboard_notices (
  category_id uuid primary key,
  notified_at timestamptz not null
);

create table if not exists app_public.leaderboard_snapshots (
  id              bigint generated always as identity primary key,
  taken_at        timestamptz not null,
  event_id        uuid not null references app_public.events on delete cascade,
  category_id     uuid not null references app_public.categories on delete cascade,
  contestant_id   uuid not null references app_public.contestants on delete cascade,
  organisation_id uuid not null references app_public.organisations,
  votes           bigint not null,
  rank            int not null
);
create index if not exists leaderboard_snapshots_category_idx on app_public.leaderboard_snapshots (category_id, taken_at);
create index if not exists leaderboard_snapshots_organisation_idx on app_public.leaderboard_snapshots (organisation_id);

create table if not exists app_public.event_judges (
  event_id        uuid not null references app_public.events on delete cascade,
  user_id         uuid not null references app_public.users on delete cascade,
  organisation_id uuid not null references app_public.organisations,
  invited_by      uuid not null references app_public.users,
  created_at      timestamptz not null default now(),
  primary key (event_id, user_id)
);
create index if not exists event_judges_user_idx on app_public.event_judges (user_id);

create table if not exists app_public.judge_scores (
  contestant_id   uuid not null references app_public.contestants on delete cascade,
  judge_id        uuid not null references app_public.users on delete cascade,
  event_id        uuid not null references app_public.events on delete cascade,
  organisation_id uuid not null references app_public.organisations,
  score           int not null constraint judge_scores_score_check check (score between 0 and 100),
  updated_at      timestamptz not null default now(),
  primary key (contestant_id, judge_id)
);
create index if not exists judge_scores_event_idx on app_public.judge_scores (event_id);

-- Money an organisation took out of an event account into its owner's wallet.
create table if not exists app_public.event_payouts (
  id              uuid primary key default uuidv7(),
  event_id        uuid not null references app_public.events,
  organisation_id uuid not null references app_public.organisations,
  user_id         uuid not null references app_public.users,
  amount          bigint not null check (amount > 0),
  entry_id        uuid not null unique references ledger.entries,
  idempotency_key text not null,
  created_at      timestamptz not null default now()
);
create index if not exists event_payouts_event_idx on app_public.event_payouts (event_id);

-- What the leaderboard and the published result return, per contestant.
do $$ begin
  create type app_public.leaderboard_entry as (
    contestant_id uuid, contestant_name text, votes bigint, rank int
  );
exception when duplicate_object then null; end $$;
do $$ begin
  create type app_public.contestant_result as (
    contestant_id uuid, contestant_name text, votes bigint, vote_share numeric, judge_score numeric, judges int,
    score numeric, rank int
  );
exception when duplicate_object then null; end $$;

--! Included ledger/accounts.sql
-- Opening accounts: user wallets (one per user and currency) and the system
-- accounts every currency needs, created on first use.

create or replace function ledger.assert_currency(p_currency text)
returns char(3)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_currency is null or not exists (select from ledger.currencies c where c.code = p_currency) then
    raise exception 'Unsupported currency %; use an ISO 4217 code such as ZAR', coalesce(quote_literal(p_currency), 'null')
      using errcode = 'PW105'; -- CURRENCY_INVALID
  end if;
  return p_currency;
end;
$$;

-- Returns the user's wallet in that currency, opening it if needed.
create or replace function ledger.open_wallet(p_owner_id uuid, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  perform ledger.assert_currency(p_currency);
  insert into ledger.accounts (kind, owner_id, currency)
  values ('user_wallet', p_owner_id, p_currency)
  on conflict (owner_id, currency) where kind = 'user_wallet' do nothing
  returning id into v_id;
  if v_id is null then
    select a.id into v_id from ledger.accounts a
     where a.kind = 'user_wallet' and a.owner_id = p_owner_id and a.currency = p_currency;
  end if;
  return v_id;
end;
$$;

-- How many shards each system account has: 16, or the session setting
-- ledger.system_shards (1 to 256; the benchmark sets 1 to show the difference).
create or replace function ledger.system_shards()
returns int
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select least(greatest(coalesce(nullif(current_setting('ledger.system_shards', true), '')::int, 16), 1), 256);
$$;

-- The shard of a system account this session posts to. Every deposit credits
-- the clearing account: with one row, every deposit in the country would
-- queue on one row lock. Spreading by backend gives concurrent transactions
-- different rows (a pool's connections are distinct backends) while one
-- session keeps to one shard. The logical balance is the sum over shards
-- (audit.system_balances); each shard still obeys every invariant.
create or replace function ledger.system_account(p_kind ledger.account_kind, p_currency text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard smallint := pg_backend_pid() % ledger.system_shards();
  v_id uuid;
begin
  if p_kind = 'user_wallet' then
    raise exception 'system_account: % is not a system account kind', p_kind using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  select a.id into v_id from ledger.accounts a
   where a.kind = p_kind and a.currency = p_currency and a.shard = v_shard;
  if v_id is null then
    perform ledger.assert_currency(p_currency);
    insert into ledger.accounts (kind, currency, shard) values (p_kind, p_currency, v_shard)
    -- No conflict target: the unique index on (kind, currency, shard) covers
    -- only the system kinds (event accounts have shards of their own).
    on conflict do nothing
    returning id into v_id;
    if v_id is null then  -- another session created it first
      select a.id into v_id from ledger.accounts a
       where a.kind = p_kind and a.currency = p_currency and a.shard = v_shard;
    end if;
  end if;
  return v_id;
end;
$$;

-- Every new user gets a ZAR wallet (a trigger, so every way of creating a user
-- is covered, not just register()).
create or replace function ledger.tg_users_open_default_wallet()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform ledger.open_wallet(new.id, 'ZAR');
  return null;
end;
$$;
create or replace trigger _500_open_default_wallet after insert on app_public.users
  for each row execute function ledger.tg_users_open_default_wallet();

-- Freezing stops debits (postings and new holds); credits still arrive.
create or replace function ledger.set_frozen(p_account_id uuid, p_frozen boolean)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update ledger.accounts set frozen = p_frozen where id = p_account_id;
  if not found then
    raise exception 'Account % does not exist', p_account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
end;
$$;

revoke all on function ledger.assert_currency(text) from public;
revoke all on function ledger.open_wallet(uuid, text) from public;
revoke all on function ledger.system_shards() from public;
revoke all on function ledger.system_account(ledger.account_kind, text) from public;
revoke all on function ledger.tg_users_open_default_wallet() from public;
revoke all on function ledger.set_frozen(uuid, boolean) from public;
--! EndIncluded ledger/accounts.sql
--! Included voting/organisations.sql
-- Organisations are the tenants of the voting product: every event, category,
-- contestant, vote and score carries its organisation's id, and RLS lets a
-- member see only their organisations' rows (sql/voting/policies.sql).

-- The organisations the caller belongs to (with their role). SECURITY DEFINER
-- so policies can use it without recursing into organisation_members' own RLS.
create or replace function app_private.my_organisation_ids()
returns setof uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.organisation_id from app_public.organisation_members m
   where m.user_id = app_public.current_user_id();
$$;

-- Raises ORGANISATION_ACCESS_DENIED unless p_user is a member (an owner, if
-- p_owner) of the organisation. Strangers and missing organisations look alike.
create or replace function app_private.assert_member(p_user uuid, p_organisation_id uuid, p_owner boolean default false)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_user is null or not exists (
    select from app_public.organisation_members m
     where m.organisation_id = p_organisation_id and m.user_id = p_user
       and (not p_owner or m.role = 'owner')) then
    raise exception 'You are not % of this organisation', case when p_owner then 'an owner' else 'a member' end
      using errcode = 'PW610'; -- ORGANISATION_ACCESS_DENIED
  end if;
end;
$$;

create or replace function app_private.require_user()
returns uuid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_public.current_user_id();
begin
  if v_user is null then
    raise exception 'Sign in first' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return v_user;
end;
$$;

-- The GraphQL mutation `createOrganisation`: the caller becomes its owner.
create or replace function app_public.create_organisation(name text)
returns app_public.organisations
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_org app_public.organisations;
begin
  insert into app_public.organisations (name, created_by) values (btrim(create_organisation.name), v_user)
  returning * into v_org;
  insert into app_public.organisation_members (organisation_id, user_id, role) values (v_org.id, v_user, 'owner');
  return v_org;
end;
$$;
comment on function app_public.create_organisation(text) is 'Creates an organisation that runs events; you become its owner.';

-- The GraphQL mutation `addOrganisationMember` (owners only).
create or replace function app_public.add_organisation_member(
  organisation_id uuid,
  email text,
  role app_public.organisation_role default 'member'
)
returns app_public.organisation_members
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_member uuid;
  v_row app_public.organisation_members;
begin
  perform app_private.assert_member(v_user, add_organisation_member.organisation_id, true);
  select u.id into v_member from app_public.users u where u.email = btrim(add_organisation_member.email)::citext;
  if v_member is null then
    raise exception 'No user has the email address %', add_organisation_member.email using errcode = 'PW617'; -- INVITEE_NOT_FOUND
  end if;
  insert into app_public.organisation_members (organisation_id, user_id, role)
  values (add_organisation_member.organisation_id, v_member, coalesce(add_organisation_member.role, 'member'))
  on conflict on constraint organisation_members_pkey do update set role = excluded.role
  returning * into v_row;
  return v_row;
end;
$$;
comment on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) is
  'Adds (or changes the role of) a member of your organisation. Owners only.';

revoke all on function app_private.my_organisation_ids() from public;
revoke all on function app_private.assert_member(uuid, uuid, boolean) from public;
revoke all on function app_private.require_user() from public;
revoke all on function app_public.create_organisation(text) from public;
revoke all on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) from public;
grant execute on function app_private.my_organisation_ids() to app_user;
grant execute on function app_public.create_organisation(text) to app_user;
grant execute on function app_public.add_organisation_member(uuid, text, app_public.organisation_role) to app_user;
--! EndIncluded voting/organisations.sql
--! Included voting/events.sql
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
--! EndIncluded voting/events.sql
--! Included voting/votes.sql
-- Casting votes: one transaction checks the event is open, takes the
-- (voter, event) lock, checks the caps and the fraud rules, pays (one entry:
-- voter → event account, platform fee → fees), records the vote and bumps the
-- leaderboard counters. app_private.cast_votes does the work for a caller
-- already identified; app_public.cast_votes is the GraphQL mutation.

-- How many shards each contestant's tally has. A contestant's votes land on
-- shard pg_backend_pid() % n, so concurrent voters for one contestant (a live
-- final) update different rows; a read sums at most n rows per contestant.
create or replace function app_private.tally_shard_count()
returns int
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$ select 16 $$;

-- Adds counted votes to the leaderboard and tells subscribers (LISTEN
-- voting:leaderboard:<category id>, delivered at commit). Every NOTIFY takes
-- a database-wide lock while its transaction commits, so notifying on every
-- vote serialised all votes (~100/s with fsync on); a category is announced
-- at most once per 100 ms instead (leading edge: the first vote after a quiet
-- spell announces at once). Votes inside the window are picked up by the
-- subscription's trailing re-read (src/voting/leaderboard-subscription.ts).
create or replace function app_private.tally_add(p_contestant_id uuid, p_category_id uuid, p_votes int)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into app_private.tally_shards as t (contestant_id, shard, category_id, votes)
  values (p_contestant_id, pg_backend_pid() % app_private.tally_shard_count(), p_category_id, p_votes)
  on conflict (contestant_id, shard) do update set votes = t.votes + excluded.votes;
  -- Only the vote that moves notified_at locks the row (until its commit);
  -- the others read it, see a recent announcement and go on.
  update app_private.leaderboard_notices n set notified_at = clock_timestamp()
   where n.category_id = p_category_id and n.notified_at < clock_timestamp() - interval '100 milliseconds';
  if not found then
    insert into app_private.leaderboard_notices (category_id, notified_at) values (p_category_id, clock_timestamp())
    on conflict (category_id) do nothing;
  end if;
  if found then
    perform pg_notify('voting:leaderboard:' || p_category_id,
                      json_build_object('categoryId', p_category_id, 'contestantId', p_contestant_id)::text);
  end if;
end;
$$;

-- The fraud rules (velocity per voter and per client address, new accounts).
-- Refuses with VOTE_VELOCITY_EXCEEDED or returns the reason to flag the vote
-- (a stable code: ADDRESS_VELOCITY, NEW_ACCOUNT), or null for a clean vote.
create or replace function app_private.vote_fraud_check(p_event app_public.events, p_voter uuid, p_client_ip inet)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_recent int;
begin
  -- Requests, not votes: a voter buying 50 votes at once is one request.
  select count(*) into v_recent from app_public.votes v
   where v.voter_id = p_voter and v.created_at > now() - interval '1 minute';
  if v_recent >= p_event.voter_requests_per_minute then
    raise exception 'Too many vote requests in the last minute; try again shortly'
      using errcode = 'PW606'; -- VOTE_VELOCITY_EXCEEDED
  end if;
  if p_client_ip is not null then
    select count(*) into v_recent from app_public.votes v
     where v.client_ip = p_client_ip and v.created_at > now() - interval '1 minute';
    if v_recent >= p_event.address_requests_per_minute then
      return 'ADDRESS_VELOCITY';
    end if;
  end if;
  if p_event.new_account_age > interval '0' and exists (
       select from app_public.users u where u.id = p_voter and u.created_at > now() - p_event.new_account_age) then
    return 'NEW_ACCOUNT';
  end if;
  return null;
end;
$$;

-- Counts p_count more votes of the voter today, for the event and for the
-- category, and refuses with VOTE_CAP_REACHED / CATEGORY_VOTE_CAP_REACHED if
-- that passes a cap (the exception rolls the counts back with everything
-- else). One statement: the upsert row-locks the voter's (event, day) row
-- until commit, which is the (voter, event) lock: a second request of the same
-- voter for the same event waits here and then sees the first one's count.
create or replace function app_private.vote_caps_take(p_event app_public.events, p_category_id uuid, p_voter uuid, p_count int)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_day date := (now() at time zone 'UTC')::date;
  v_event_votes int;
  v_category_votes int;
begin
  with counted as (
    insert into app_private.voter_day_counts as c (voter_id, event_id, scope_id, day, votes)
    values (p_voter, p_event.id, p_event.id, v_day, p_count), (p_voter, p_event.id, p_category_id, v_day, p_count)
    on conflict (voter_id, event_id, scope_id, day) do update set votes = c.votes + excluded.votes
    returning c.scope_id, c.votes)
  select max(k.votes) filter (where k.scope_id = p_event.id), max(k.votes) filter (where k.scope_id = p_category_id)
    into v_event_votes, v_category_votes
    from counted k;
  if v_event_votes > p_event.max_votes_per_voter_per_day then
    raise exception 'Daily vote limit reached for this event: % of % used', v_event_votes - p_count, p_event.max_votes_per_voter_per_day
      using errcode = 'PW604'; -- VOTE_CAP_REACHED
  end if;
  if v_category_votes > p_event.max_votes_per_category_per_day then
    raise exception 'Daily vote limit reached for this category: % of % used', v_category_votes - p_count, p_event.max_votes_per_category_per_day
      using errcode = 'PW605'; -- CATEGORY_VOTE_CAP_REACHED
  end if;
end;
$$;

-- Pays for p_count votes: voter's wallet → the event account (this session's
-- shard) and the platform fee → fees, one balanced entry with the given id.
create or replace function app_private.vote_pay(p_event app_public.events, p_voter uuid, p_amount bigint, p_fee bigint,
                                               p_idempotency_ref text, p_entry_id uuid, p_metadata jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_wallet uuid;
  v_event_account uuid;
begin
  select a.id into v_wallet from ledger.accounts a
   where a.kind = 'user_wallet' and a.owner_id = p_voter and a.currency = p_event.currency;
  if v_wallet is null then
    raise exception 'You have no % wallet to pay for votes', p_event.currency using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;
  select ea.account_id into v_event_account from app_private.event_accounts ea
   where ea.event_id = p_event.id and ea.shard = pg_backend_pid() % p_event.account_shards;
  perform ledger.post_entry('vote',
    array[row(v_wallet, -p_amount), row(v_event_account, p_amount - p_fee)]::ledger.leg[]
      || case when p_fee > 0 then array[row(ledger.system_account('fees', p_event.currency), p_fee)::ledger.leg] else '{}' end,
    'Votes', p_metadata, p_idempotency_ref, null, p_entry_id);
end;
$$;

create or replace function app_private.cast_votes(
  p_voter uuid,
  p_contestant_id uuid,
  p_count int,
  p_idempotency_key text,
  p_client_ip inet default null
)
returns app_public.votes
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_target record;
  v_event app_public.events;
  v_vote app_public.votes;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_amount bigint;
  v_fee bigint;
  v_flag text;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  select c.id, c.category_id, c.organisation_id, e as event into v_target
    from app_public.contestants c join app_public.events e on e.id = c.event_id
   where c.id = p_contestant_id and e.status <> 'draft';
  if not found then
    raise exception 'Contestant % not found', p_contestant_id using errcode = 'PW602'; -- CONTESTANT_NOT_FOUND
  end if;
  v_event := v_target.event;
  if p_count is null or p_count < 1 or p_count > v_event.max_votes_per_request then
    raise exception 'Votes per request must be between 1 and %', v_event.max_votes_per_request
      using errcode = 'PW601'; -- VOTE_COUNT_INVALID
  end if;
  v_amount := v_event.vote_price * p_count;
  v_fee := v_amount * v_event.platform_fee_bps / 10000;

  -- Paid votes claim the key like transfers do (duplicates racing wait here
  -- and get the first vote back). Free votes have no entry to point at; the
  -- key is theirs through votes_idempotency, checked under the lock below.
  if v_amount > 0 then
    v_first_entry_id := app_private.idempotency_claim('user:' || p_voter, p_idempotency_key, 'cast_votes',
      jsonb_build_object('contestant', p_contestant_id, 'count', p_count), v_entry_id);
    if v_first_entry_id is not null then
      select v.* into v_vote from app_public.votes v where v.entry_id = v_first_entry_id;
      return v_vote;
    end if;
  end if;

  -- The time is checked after the claim, so a replay of a vote cast before
  -- the close still returns that vote.
  if v_event.status <> 'open' or now() < v_event.opens_at or now() >= v_event.closes_at then
    raise exception '%', case when now() < v_event.opens_at and v_event.status = 'open' then 'Voting has not opened yet'
                             else 'Voting is closed for this event' end
      using errcode = 'PW603'; -- EVENT_NOT_OPEN
  end if;

  -- Free votes have no idempotency claim to serialise identical requests, so
  -- they take the (voter, event) lock before looking for an earlier vote with
  -- the key (a replay must not count against the caps).
  if v_amount = 0 then
    perform pg_advisory_xact_lock(612, hashtext(p_voter::text || '/' || v_event.id::text));
    select v.* into v_vote from app_public.votes v where v.voter_id = p_voter and v.idempotency_key = p_idempotency_key;
    if found then
      if v_vote.contestant_id <> p_contestant_id or v_vote.count <> p_count or v_vote.amount <> 0 then
        raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
      end if;
      return v_vote;
    end if;
  end if;

  -- Caps first: from here on this voter's other requests for this event wait.
  perform app_private.vote_caps_take(v_event, v_target.category_id, p_voter, p_count);
  v_flag := app_private.vote_fraud_check(v_event, p_voter, p_client_ip);
  if v_amount > 0 then
    perform app_private.vote_pay(v_event, p_voter, v_amount, v_fee, 'user:' || p_voter || '/' || p_idempotency_key, v_entry_id,
      jsonb_build_object('event', v_event.id, 'contestant', p_contestant_id, 'votes', p_count));
  end if;

  -- (No exception block here: a subtransaction per vote costs more than the
  -- check it would save. The key was checked above, for free votes under the
  -- lock; paid ones hold the idempotency claim.)
  insert into app_public.votes (event_id, category_id, contestant_id, organisation_id, voter_id, count, amount, fee,
                                entry_id, status, flag_reason, client_ip, idempotency_key)
  values (v_event.id, v_target.category_id, p_contestant_id, v_target.organisation_id, p_voter, p_count, v_amount, v_fee,
          case when v_amount > 0 then v_entry_id end, case when v_flag is null then 'counted' else 'flagged' end::app_public.vote_status,
          v_flag, p_client_ip, p_idempotency_key)
  returning * into v_vote;
  if v_flag is null then
    perform app_private.tally_add(p_contestant_id, v_target.category_id, p_count);
  end if;
  return v_vote;
end;
$$;

-- The GraphQL mutation `castVotes`.
create or replace function app_public.cast_votes(contestant_id uuid, count int, idempotency_key text)
returns app_public.votes
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ip inet;
begin
  begin
    v_ip := nullif(current_setting('request.client_ip', true), '')::inet;
  exception when invalid_text_representation then
    v_ip := null;
  end;
  return app_private.cast_votes(app_private.require_user(), cast_votes.contestant_id, cast_votes.count,
                                cast_votes.idempotency_key, v_ip);
end;
$$;
comment on function app_public.cast_votes(uuid, int, text) is
  E'Casts `count` votes for a contestant, paid from your wallet in the event''s currency (price × count; free events cost nothing). '
  'Refused with EVENT_NOT_OPEN outside the voting window, VOTE_CAP_REACHED / CATEGORY_VOTE_CAP_REACHED past your daily caps, '
  'VOTE_VELOCITY_EXCEEDED when voting too fast, INSUFFICIENT_FUNDS. A vote may come back `FLAGGED` (fraud rules): it is held out of '
  'the leaderboard until the organiser reviews it. Repeating a request with the same `idempotencyKey` returns the first vote.';

-- The GraphQL mutation `reviewVote`: an organiser approves a flagged vote
-- (it joins the leaderboard) or rejects it (the payment goes back to the voter).
create or replace function app_public.review_vote(vote_id uuid, approve boolean)
returns app_public.votes
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_vote app_public.votes;
  v_refund uuid;
begin
  select v.* into v_vote from app_public.votes v where v.id = review_vote.vote_id for update;
  if not found then
    raise exception 'Vote % not found', review_vote.vote_id using errcode = 'PW614'; -- VOTE_NOT_REVIEWABLE
  end if;
  perform app_private.assert_member(v_user, v_vote.organisation_id);
  if v_vote.status <> 'flagged' then
    raise exception 'Only flagged votes can be reviewed; this one is %', v_vote.status using errcode = 'PW614'; -- VOTE_NOT_REVIEWABLE
  end if;
  if review_vote.approve then
    perform app_private.tally_add(v_vote.contestant_id, v_vote.category_id, v_vote.count);
  elsif v_vote.entry_id is not null then
    v_refund := ledger.reverse_entry(v_vote.entry_id, 'Rejected votes refunded');
  end if;
  update app_public.votes v
     set status = case when review_vote.approve then 'counted' else 'rejected' end::app_public.vote_status,
         reviewed_at = now(), reviewed_by = v_user, refund_entry_id = v_refund
   where v.id = v_vote.id
  returning v.* into v_vote;
  return v_vote;
end;
$$;
comment on function app_public.review_vote(uuid, boolean) is
  'Reviews a flagged vote of your organisation: approve adds it to the leaderboard; reject refunds the voter (the payment entry is reversed).';

revoke all on function app_private.tally_shard_count() from public;
revoke all on function app_private.tally_add(uuid, uuid, int) from public;
revoke all on function app_private.vote_fraud_check(app_public.events, uuid, inet) from public;
revoke all on function app_private.vote_caps_take(app_public.events, uuid, uuid, int) from public;
revoke all on function app_private.vote_pay(app_public.events, uuid, bigint, bigint, text, uuid, jsonb) from public;
revoke all on function app_private.cast_votes(uuid, uuid, int, text, inet) from public;
revoke all on function app_public.cast_votes(uuid, int, text) from public;
revoke all on function app_public.review_vote(uuid, boolean) from public;
grant execute on function app_public.cast_votes(uuid, int, text) to app_user;
grant execute on function app_public.review_vote(uuid, boolean) to app_user;
--! EndIncluded voting/votes.sql
--! Included voting/leaderboard.sql
-- The leaderboard: counted votes per contestant come from the tally shards
-- (kept by cast_votes and review_vote in the vote's transaction), so a read
-- sums at most tally_shard_count() rows per contestant of one category and
-- never scans the votes. Snapshots keep its history; the published result
-- combines it with the judges' scores.

-- Who may read a category's standings: members of the organisation always;
-- everyone else while the event is open (if its leaderboard is public) or
-- once the result is published.
create or replace function app_private.leaderboard_event(p_category_id uuid)
returns app_public.events
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event app_public.events;
begin
  select e.* into v_event from app_public.categories c join app_public.events e on e.id = c.event_id
   where c.id = p_category_id;
  if not found or not (
       v_event.organisation_id in (select app_private.my_organisation_ids())
       or v_event.status = 'published'
       or (v_event.status = 'open' and v_event.leaderboard_public)) then
    raise exception 'This leaderboard is not public' using errcode = 'PW607'; -- LEADERBOARD_HIDDEN
  end if;
  return v_event;
end;
$$;

create or replace function app_private.category_standings(p_category_id uuid)
returns setof app_public.leaderboard_entry
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select c.id, c.name, coalesce(t.votes, 0)::bigint,
         (rank() over (order by coalesce(t.votes, 0) desc))::int
    from app_public.contestants c
    left join (select s.contestant_id, sum(s.votes) as votes from app_private.tally_shards s
                where s.category_id = p_category_id group by s.contestant_id) t on t.contestant_id = c.id
   where c.category_id = p_category_id
   order by 4, c.name, c.id;
$$;

-- The GraphQL query `categoryLeaderboard`: counted votes and rank per contestant.
create or replace function app_public.category_leaderboard(category_id uuid)
returns setof app_public.leaderboard_entry
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.leaderboard_event(category_leaderboard.category_id);
  return query select * from app_private.category_standings(category_leaderboard.category_id);
end;
$$;
comment on function app_public.category_leaderboard(uuid) is
  E'@behavior -connection +list\nCounted votes and rank of each contestant in a category (flagged votes wait for review). '
  'Public while the event is open (if its leaderboard is public) and once published; always to the organisation''s members.';
comment on type app_public.leaderboard_entry is 'A contestant''s place on a leaderboard.';
comment on column app_public.leaderboard_entry.contestant_id is '@notNull';
comment on column app_public.leaderboard_entry.contestant_name is '@notNull';
comment on column app_public.leaderboard_entry.votes is '@notNull';
comment on column app_public.leaderboard_entry.rank is E'@notNull\n1 for the most votes; ties share a rank.';

-- The GraphQL query `categoryResults`: the result of a published event (or,
-- for members, the result as it stands): public_weight % of the contestant's
-- share of the category's votes plus judge_weight % of the mean judge score
-- (0..100), so `score` is 0..100.
create or replace function app_public.category_results(category_id uuid)
returns setof app_public.contestant_result
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event app_public.events;
begin
  v_event := app_private.leaderboard_event(category_results.category_id);
  if v_event.status <> 'published' and v_event.organisation_id not in (select app_private.my_organisation_ids()) then
    raise exception 'The result is not published yet' using errcode = 'PW607'; -- LEADERBOARD_HIDDEN
  end if;
  return query
  with standings as (select * from app_private.category_standings(category_results.category_id)),
       total as (select nullif(sum(s.votes), 0) as votes from standings s),
       judged as (select j.contestant_id, avg(j.score) as score, count(*)::int as judges
                    from app_public.judge_scores j join standings s on s.contestant_id = j.contestant_id
                   group by j.contestant_id),
       scored as (
         select s.contestant_id, s.contestant_name, s.votes,
                round(coalesce(s.votes / t.votes, 0) * 100, 4) as vote_share,
                round(j.score, 4) as judge_score, coalesce(j.judges, 0) as judges,
                round(v_event.public_weight * coalesce(s.votes / t.votes, 0)
                      + v_event.judge_weight * coalesce(j.score, 0) / 100, 4) as score
           from standings s cross join total t left join judged j on j.contestant_id = s.contestant_id)
  select sc.*, (rank() over (order by sc.score desc))::int from scored sc order by 8, 2;
end;
$$;
comment on function app_public.category_results(uuid) is
  E'@behavior -connection +list\nThe combined result of a category: public votes and judge scores weighted by the event''s publicWeight and judgeWeight. '
  'Public once the event is published; members see it as it stands.';
comment on type app_public.contestant_result is 'A contestant''s combined result.';
comment on column app_public.contestant_result.contestant_id is '@notNull';
comment on column app_public.contestant_result.contestant_name is '@notNull';
comment on column app_public.contestant_result.votes is '@notNull';
comment on column app_public.contestant_result.vote_share is E'@notNull\nPercent of the category''s counted votes.';
comment on column app_public.contestant_result.judge_score is 'Mean judge score (0..100), null if no judge scored.';
comment on column app_public.contestant_result.judges is '@notNull';
comment on column app_public.contestant_result.score is E'@notNull\npublicWeight × voteShare/100 + judgeWeight × judgeScore/100 (0..100).';
comment on column app_public.contestant_result.rank is '@notNull';

-- Cron (src/voting/tasks.ts): one snapshot of every open event's standings.
-- Returns the number of rows written.
create or replace function app_private.snapshot_leaderboards()
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count int;
begin
  insert into app_public.leaderboard_snapshots (taken_at, event_id, category_id, contestant_id, organisation_id, votes, rank)
  select now(), c.event_id, c.id, s.contestant_id, c.organisation_id, s.votes, s.rank
    from app_public.categories c
    join app_public.events e on e.id = c.event_id and e.status = 'open'
    cross join lateral app_private.category_standings(c.id) s;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

revoke all on function app_private.leaderboard_event(uuid) from public;
revoke all on function app_private.category_standings(uuid) from public;
revoke all on function app_public.category_leaderboard(uuid) from public;
revoke all on function app_public.category_results(uuid) from public;
revoke all on function app_private.snapshot_leaderboards() from public;
grant execute on function app_public.category_leaderboard(uuid) to app_anonymous;
grant execute on function app_public.category_results(uuid) to app_anonymous;
--! EndIncluded voting/leaderboard.sql
--! Included voting/judges.sql
-- Judges: an organisation member invites a user to judge one event; the judge
-- scores each contestant 0..100 while the event is open or closed (before the
-- result is published). category_results combines the scores with the votes.

-- The GraphQL mutation `inviteJudge`.
create or replace function app_public.invite_judge(event_id uuid, email text)
returns app_public.event_judges
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_event app_public.events;
  v_judge uuid;
  v_row app_public.event_judges;
begin
  select e.* into v_event from app_public.events e where e.id = invite_judge.event_id;
  if not found then
    raise exception 'Event % not found', invite_judge.event_id using errcode = 'PW608'; -- EVENT_NOT_FOUND
  end if;
  perform app_private.assert_member(v_user, v_event.organisation_id);
  select u.id into v_judge from app_public.users u where u.email = btrim(invite_judge.email)::citext;
  if v_judge is null then
    raise exception 'No user has the email address %', invite_judge.email using errcode = 'PW617'; -- INVITEE_NOT_FOUND
  end if;
  insert into app_public.event_judges (event_id, user_id, organisation_id, invited_by)
  values (v_event.id, v_judge, v_event.organisation_id, v_user)
  on conflict on constraint event_judges_pkey do nothing;
  select j.* into v_row from app_public.event_judges j where j.event_id = v_event.id and j.user_id = v_judge;
  return v_row;
end;
$$;
comment on function app_public.invite_judge(uuid, text) is 'Invites the user with this email to judge your organisation''s event.';

-- The GraphQL mutation `scoreContestant`: a judge's score (a new score
-- replaces the judge's earlier one).
create or replace function app_public.score_contestant(contestant_id uuid, score int)
returns app_public.judge_scores
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user uuid := app_private.require_user();
  v_contestant record;
  v_row app_public.judge_scores;
begin
  select c.id, c.event_id, c.organisation_id, e.status into v_contestant
    from app_public.contestants c join app_public.events e on e.id = c.event_id
    join app_public.event_judges j on j.event_id = c.event_id and j.user_id = v_user
   where c.id = score_contestant.contestant_id;
  if not found then
    raise exception 'You are not a judge of this contestant''s event' using errcode = 'PW612'; -- JUDGE_NOT_INVITED
  end if;
  if v_contestant.status not in ('open', 'closed') then
    raise exception 'Scores are accepted while the event is open or closed, not %', v_contestant.status
      using errcode = 'PW609'; -- EVENT_STATUS_INVALID
  end if;
  if score_contestant.score is null or score_contestant.score not between 0 and 100 then
    raise exception 'A score is a whole number from 0 to 100' using errcode = 'PW613'; -- SCORE_INVALID
  end if;
  insert into app_public.judge_scores as s (contestant_id, judge_id, event_id, organisation_id, score)
  values (v_contestant.id, v_user, v_contestant.event_id, v_contestant.organisation_id, score_contestant.score)
  on conflict on constraint judge_scores_pkey do update set score = excluded.score, updated_at = now()
  returning s.* into v_row;
  return v_row;
end;
$$;
comment on function app_public.score_contestant(uuid, int) is 'As an invited judge, scores a contestant from 0 to 100 (replacing your earlier score).';

revoke all on function app_public.invite_judge(uuid, text) from public;
revoke all on function app_public.score_contestant(uuid, int) from public;
grant execute on function app_public.invite_judge(uuid, text) to app_user;
grant execute on function app_public.score_contestant(uuid, int) to app_user;
--! EndIncluded voting/judges.sql
--! Included voting/payouts.sql
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
--! EndIncluded voting/payouts.sql
--! Included voting/policies.sql
-- Who sees and writes what in the voting product. The tenant rule: a row is
-- visible to the members of its organisation (app_private.my_organisation_ids,
-- evaluated once per query). Public rule: events, their categories,
-- contestants and snapshots are readable by anyone while the event is open
-- or published. Votes: the voter's own and the organisation's. Money and
-- state changes only go through the SECURITY DEFINER functions.

alter table app_public.organisations enable row level security;
drop policy if exists select_member on app_public.organisations;
create policy select_member on app_public.organisations for select to app_user
  using (id in (select app_private.my_organisation_ids()));
drop policy if exists update_owner on app_public.organisations;

alter table app_public.organisation_members enable row level security;
drop policy if exists select_member on app_public.organisation_members;
create policy select_member on app_public.organisation_members for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.events enable row level security;
drop policy if exists select_public on app_public.events;
create policy select_public on app_public.events for select to app_anonymous
  using (status in ('open', 'published'));
drop policy if exists select_member on app_public.events;
create policy select_member on app_public.events for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));
drop policy if exists insert_member on app_public.events;
create policy insert_member on app_public.events for insert to app_user
  with check (organisation_id in (select app_private.my_organisation_ids()));
drop policy if exists update_member on app_public.events;
create policy update_member on app_public.events for update to app_user
  using (organisation_id in (select app_private.my_organisation_ids()))
  with check (organisation_id in (select app_private.my_organisation_ids()));

-- Categories and contestants: public while their event is.
create or replace function app_private.event_is_public(p_event_id uuid)
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select exists (select from app_public.events e where e.id = p_event_id and e.status in ('open', 'published'));
$$;

alter table app_public.categories enable row level security;
drop policy if exists select_public on app_public.categories;
create policy select_public on app_public.categories for select to app_anonymous
  using (app_private.event_is_public(event_id));
drop policy if exists select_member on app_public.categories;
create policy select_member on app_public.categories for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));
drop policy if exists write_member on app_public.categories;
create policy write_member on app_public.categories for all to app_user
  using (organisation_id in (select app_private.my_organisation_ids()))
  with check (organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.contestants enable row level security;
drop policy if exists select_public on app_public.contestants;
create policy select_public on app_public.contestants for select to app_anonymous
  using (app_private.event_is_public(event_id));
drop policy if exists select_member on app_public.contestants;
create policy select_member on app_public.contestants for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));
drop policy if exists write_member on app_public.contestants;
create policy write_member on app_public.contestants for all to app_user
  using (organisation_id in (select app_private.my_organisation_ids()))
  with check (organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.votes enable row level security;
drop policy if exists select_own_or_member on app_public.votes;
create policy select_own_or_member on app_public.votes for select to app_user
  using (voter_id = (select app_public.current_user_id())
         or organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.leaderboard_snapshots enable row level security;
drop policy if exists select_public on app_public.leaderboard_snapshots;
create policy select_public on app_public.leaderboard_snapshots for select to app_anonymous
  using (app_private.event_is_public(event_id));
drop policy if exists select_member on app_public.leaderboard_snapshots;
create policy select_member on app_public.leaderboard_snapshots for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.event_judges enable row level security;
drop policy if exists select_own_or_member on app_public.event_judges;
create policy select_own_or_member on app_public.event_judges for select to app_user
  using (user_id = (select app_public.current_user_id()) or organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.judge_scores enable row level security;
drop policy if exists select_own_or_member on app_public.judge_scores;
create policy select_own_or_member on app_public.judge_scores for select to app_user
  using (judge_id = (select app_public.current_user_id()) or organisation_id in (select app_private.my_organisation_ids()));

alter table app_public.event_payouts enable row level security;
drop policy if exists select_member on app_public.event_payouts;
create policy select_member on app_public.event_payouts for select to app_user
  using (organisation_id in (select app_private.my_organisation_ids()));

revoke all on app_public.organisations, app_public.organisation_members, app_public.events, app_public.categories,
              app_public.contestants, app_public.votes, app_public.leaderboard_snapshots, app_public.event_judges,
              app_public.judge_scores, app_public.event_payouts
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on app_private.event_accounts, app_private.voter_day_counts, app_private.tally_shards, app_private.leaderboard_notices
  from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;

grant select on app_public.organisations, app_public.organisation_members to app_user;
grant select (id, organisation_id, name, status, opens_at, closes_at, currency, vote_price, allow_free_votes,
              max_votes_per_request, max_votes_per_voter_per_day, max_votes_per_category_per_day,
              public_weight, judge_weight, leaderboard_public, created_at, updated_at)
  on app_public.events to app_anonymous;
-- (all of them: a computed field such as Event.balance reads the whole row)
grant select (voter_requests_per_minute, address_requests_per_minute, new_account_age, platform_fee_bps, account_shards)
  on app_public.events to app_user;
grant insert (organisation_id, name, opens_at, closes_at, currency, vote_price, allow_free_votes, max_votes_per_request,
              max_votes_per_voter_per_day, max_votes_per_category_per_day, public_weight, judge_weight, leaderboard_public,
              voter_requests_per_minute, address_requests_per_minute, new_account_age)
  on app_public.events to app_user;
grant update (name, opens_at, closes_at, vote_price, allow_free_votes, max_votes_per_request,
              max_votes_per_voter_per_day, max_votes_per_category_per_day, public_weight, judge_weight, leaderboard_public,
              voter_requests_per_minute, address_requests_per_minute, new_account_age)
  on app_public.events to app_user;
grant select (id, event_id, organisation_id, name, position, created_at) on app_public.categories to app_anonymous;
grant insert (event_id, name, position), update (name, position) on app_public.categories to app_user;
grant select (id, category_id, event_id, organisation_id, name, bio, created_at) on app_public.contestants to app_anonymous;
grant insert (category_id, name, bio), update (name, bio) on app_public.contestants to app_user;
grant select (id, event_id, category_id, contestant_id, organisation_id, voter_id, count, amount, fee, entry_id, status,
              flag_reason, idempotency_key, created_at, reviewed_at, refund_entry_id)
  on app_public.votes to app_user;
grant select on app_public.leaderboard_snapshots to app_anonymous;
grant select on app_public.event_judges, app_public.judge_scores, app_public.event_payouts to app_user;

revoke all on function app_private.event_is_public(uuid) from public;
grant execute on function app_private.event_is_public(uuid) to app_anonymous;

comment on table app_public.organisations is E'@behavior -insert -update -delete\nA tenant that runs events (createOrganisation).';
comment on table app_public.organisation_members is E'@behavior -insert -update -delete\nWho belongs to an organisation (addOrganisationMember).';
comment on table app_public.events is
  E'@behavior -delete\nA voting event. Created as a draft by a member of the organisation; setEventStatus opens, closes and publishes it. '
  'Amounts (votePrice) are minor units of `currency`; caps are per voter per UTC day.';
comment on table app_public.categories is E'@behavior -delete\nA category of an event (added while the event is a draft).';
comment on table app_public.contestants is E'@behavior -delete\nSomeone to vote for, in one category.';
comment on table app_public.votes is E'@behavior -insert -update -delete\nVotes cast (castVotes): yours, and for organisers their events''.';
comment on table app_public.leaderboard_snapshots is E'@behavior -insert -update -delete\nA periodic copy of the standings of open events.';
comment on table app_public.event_judges is E'@behavior -insert -update -delete\nJudges invited to an event (inviteJudge).';
comment on table app_public.judge_scores is E'@behavior -insert -update -delete\nA judge''s score of a contestant (scoreContestant).';
comment on table app_public.event_payouts is E'@behavior -insert -update -delete\nEvent takings moved to an owner''s wallet (withdrawEventFunds).';
comment on column app_public.votes.flag_reason is 'Why the fraud rules held this vote for review: ADDRESS_VELOCITY or NEW_ACCOUNT.';
-- Filterable although not indexed on their own (every index costs each vote a
-- write): RLS narrows to the organisation (votes_organisation_idx) first, and
-- flagged votes per event have a partial index.
comment on column app_public.votes.event_id is '@behavior +filterBy';
comment on column app_public.votes.status is '@behavior +filterBy';
--! EndIncluded voting/policies.sql
--! Included voting/audit.sql
-- For DBAs and auditors (role app_auditor): every vote the fraud rules held,
-- with what the API does not show (client address, voter email), and how it
-- was resolved. Organisers see their own flagged votes through the API
-- (allVotes with condition status FLAGGED) and review them with reviewVote.
create or replace view audit.flagged_votes as
  select v.id as vote_id, v.created_at, v.status, v.flag_reason, v.client_ip,
         u.email as voter_email, u.created_at as voter_since,
         o.name as organisation, e.name as event, c.name as contestant,
         v.count, v.amount, v.entry_id, v.reviewed_at, r.email as reviewed_by, v.refund_entry_id
    from app_public.votes v
    join app_public.users u on u.id = v.voter_id
    join app_public.organisations o on o.id = v.organisation_id
    join app_public.events e on e.id = v.event_id
    join app_public.contestants c on c.id = v.contestant_id
    left join app_public.users r on r.id = v.reviewed_by
   where v.flag_reason is not null;
comment on view audit.flagged_votes is 'Votes the fraud rules flagged: waiting (status flagged), approved (counted) or rejected and refunded.';

-- Leaderboard drift: the tally must equal the recount of counted votes.
create or replace view audit.leaderboard_drift as
  select c.id as contestant_id, coalesce(t.votes, 0) as tallied, coalesce(v.votes, 0) as recounted
    from app_public.contestants c
    left join (select s.contestant_id, sum(s.votes) as votes from app_private.tally_shards s group by 1) t on t.contestant_id = c.id
    left join (select x.contestant_id, sum(x.count) as votes from app_public.votes x where x.status = 'counted' group by 1) v
           on v.contestant_id = c.id
   where coalesce(t.votes, 0) <> coalesce(v.votes, 0);
comment on view audit.leaderboard_drift is 'Contestants whose leaderboard count differs from the recount of counted votes; must be empty.';

revoke all on audit.flagged_votes, audit.leaderboard_drift from public;
grant select on audit.flagged_votes, audit.leaderboard_drift to app_auditor;
--! EndIncluded voting/audit.sql

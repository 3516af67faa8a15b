-- Enter migration here
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

--!include ledger/accounts.sql
--!include voting/organisations.sql
--!include voting/events.sql
--!include voting/votes.sql
--!include voting/leaderboard.sql
--!include voting/judges.sql
--!include voting/payouts.sql
--!include voting/policies.sql
--!include voting/audit.sql

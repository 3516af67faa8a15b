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

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

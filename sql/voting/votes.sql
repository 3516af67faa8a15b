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

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

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

-- Read-only views for DBAs and auditors (role app_auditor). They run with the
-- owner's rights, so an auditor needs nothing on the ledger itself. What each
-- view should show on a healthy system, and what to do if it does not, is in
-- docs/runbook-ledger.md.

-- Per currency, everything must net to zero: money is only ever moved.
create or replace view audit.trial_balance as
  select a.currency,
         count(*) as accounts,
         sum(a.balance) as net_balance,                                        -- must be 0
         sum(a.balance) filter (where a.kind = 'user_wallet') as owed_to_users,
         sum(a.balance) filter (where a.kind <> 'user_wallet') as system_total,
         sum(a.held) as held
    from ledger.accounts a
   group by a.currency;
comment on view audit.trial_balance is 'Per currency: net_balance must be 0 (owed_to_users = -system_total).';

-- The logical balance of each system account, summed over its shards.
create or replace view audit.system_balances as
  select a.kind, a.currency, count(*) as shards, sum(a.balance) as balance, sum(a.version) as postings
    from ledger.accounts a
   where a.kind <> 'user_wallet'
   group by a.kind, a.currency;

-- Every posting with its entry: filter on account_id (or owner_email) and
-- order by sequence to read an account's statement.
create or replace view audit.account_statement as
  select p.account_id,
         a.kind as account_kind,
         a.currency,
         u.email as owner_email,
         p.sequence,
         p.created_at,
         e.kind as entry_kind,
         p.entry_id,
         e.memo,
         case when p.amount < 0 then -p.amount end as debit,
         case when p.amount > 0 then p.amount end as credit,
         p.balance_after,
         e.reverses_entry_id
    from ledger.postings p
    join ledger.accounts a on a.id = p.account_id
    join ledger.entries e on e.id = p.entry_id
    left join app_public.users u on u.id = a.owner_id;

-- Accounts whose stored figures disagree with their history. Must be empty.
-- Reads every posting: run it off-peak or on a replica for big ledgers.
create or replace view audit.balance_drift as
  with history as (
    select p.account_id, sum(p.amount) as posted, count(*) as postings, max(p.sequence) as last_sequence
      from ledger.postings p group by p.account_id
  ), open_holds as (
    select h.account_id, sum(h.amount) as held from ledger.holds h where h.status = 'placed' group by h.account_id
  )
  select a.id as account_id, a.kind, a.currency,
         a.balance as stored_balance, coalesce(hi.posted, 0) as posted_balance,
         a.held as stored_held, coalesce(oh.held, 0) as open_holds,
         a.version, coalesce(hi.postings, 0) as postings, hi.last_sequence
    from ledger.accounts a
    left join history hi on hi.account_id = a.id
    left join open_holds oh on oh.account_id = a.id
   where a.balance <> coalesce(hi.posted, 0)
      or a.held <> coalesce(oh.held, 0)
      or a.version <> coalesce(hi.postings, 0)
      or a.version <> coalesce(hi.last_sequence, 0)
      or (not a.allow_negative and a.balance - a.held < 0);

-- Entries that do not sum to zero per currency, or have fewer than two
-- postings. Must be empty.
create or replace view audit.unbalanced_entries as
  select e.id as entry_id, e.kind, e.created_at, s.currency, s.total, s.postings
    from ledger.entries e
    left join lateral (
      select p.currency, sum(p.amount) as total, count(*) as postings
        from ledger.postings p where p.entry_id = e.id group by p.currency
    ) s on true
   where s.currency is null or s.total <> 0 or s.postings < 2;

-- Holds still reserving money; overdue ones are waiting for the expiry job
-- (ledger_expire_holds, every minute) — many of them means the worker is down.
create or replace view audit.open_holds as
  select h.id as hold_id, h.account_id, u.email as owner_email, a.currency, h.amount, h.memo,
         h.created_at, h.expires_at, h.expires_at <= now() as overdue
    from ledger.holds h
    join ledger.accounts a on a.id = h.account_id
    left join app_public.users u on u.id = a.owner_id
   where h.status = 'placed';

create or replace view audit.expired_holds as
  select h.id as hold_id, h.account_id, u.email as owner_email, a.currency, h.amount, h.memo,
         h.created_at, h.expires_at, h.closed_at
    from ledger.holds h
    join ledger.accounts a on a.id = h.account_id
    left join app_public.users u on u.id = a.owner_id
   where h.status = 'expired';

-- One row per entry with the amount it moved (the sum of its credits), for
-- "largest movements": filter on created_at and order by amount desc.
create or replace view audit.movements as
  select e.id as entry_id, e.kind, e.created_at, e.memo, p.currency,
         sum(p.amount) filter (where p.amount > 0) as amount,
         count(*) as postings, e.reverses_entry_id
    from ledger.entries e
    join ledger.postings p on p.entry_id = e.id
   group by e.id, p.currency;

-- The triggers that enforce the ledger's invariants, and whether each fires.
-- Only DDL by the owner (or a superuser) can disable or drop one; every row
-- must say enabled, and the count must not drop (docs/runbook-ledger.md).
create or replace view audit.ledger_guards as
  select t.tgrelid::regclass::text as table_name, t.tgname as trigger_name,
         t.tgenabled in ('O', 'A') as enabled, t.tgdeferrable as deferred,
         t.tgfoid::regproc::text as function_name
    from pg_trigger t
   where not t.tgisinternal
     and ((t.tgrelid in ('ledger.accounts'::regclass, 'ledger.entries'::regclass, 'ledger.postings'::regclass,
                         'ledger.holds'::regclass, 'app_public.users'::regclass)
           and t.tgfoid::regproc::text like 'ledger.%')
       -- The admin log's append-only triggers guard the record of who moved money by hand.
       or (t.tgrelid = 'app_private.admin_actions'::regclass
           and t.tgfoid = 'app_private.tg_admin_actions_append_only'::regproc));

-- The largest movements in a period, biggest first.
create or replace function audit.largest_movements(p_from timestamptz, p_to timestamptz, p_limit int default 20)
returns setof audit.movements
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.* from audit.movements m
   where m.created_at >= p_from and m.created_at < p_to
   order by m.amount desc, m.entry_id
   limit p_limit;
$$;

revoke all on audit.trial_balance, audit.system_balances, audit.account_statement, audit.balance_drift,
              audit.unbalanced_entries, audit.open_holds, audit.expired_holds, audit.movements, audit.ledger_guards
  from public;
grant select on audit.trial_balance, audit.system_balances, audit.account_statement, audit.balance_drift,
                audit.unbalanced_entries, audit.open_holds, audit.expired_holds, audit.movements, audit.ledger_guards
  to app_auditor;
revoke all on function audit.largest_movements(timestamptz, timestamptz, int) from public;
grant execute on function audit.largest_movements(timestamptz, timestamptz, int) to app_auditor;

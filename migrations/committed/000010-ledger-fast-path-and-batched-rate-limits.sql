--! Previous: sha1:01b21bc715e1affa8ee7925f705982302b27610e
--! Hash: sha1:e7d2214a43c6459861dc6064b2f391d21d42f13c
--! Message: ledger fast path and batched rate limits

-- ==== ledger-perf ====
-- The ledger write path in fewer statements (issue 13): post_entry locks and
-- checks in one statement and writes the entry with its postings in another;
-- the postings' apply trigger runs once per statement; transfer reads the
-- sender and the recipient in one statement.
--! Included ledger/post_entry.sql
-- The one way money moves: an entry with two or more legs, written at once.
-- The triggers do the bookkeeping (sequence, balance_after, stored balance)
-- and refuse anything wrong; this function adds the lock order and the early,
-- clear errors, in two statements (lock and check; entry and postings).

create or replace function ledger.post_entry(
  p_kind ledger.entry_kind,
  p_legs ledger.leg[],
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_reverses_entry_id uuid default null,
  p_entry_id uuid default null          -- lets capture_hold name the entry before writing it
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry_id uuid := coalesce(p_entry_id, uuidv7());
  v_legs ledger.leg[];
  v_bad_leg boolean;
  v_found bigint;
  v_unbalanced bigint;
begin
  -- One statement merges the legs (one per account: a posting's sequence
  -- comes from its account row, so two postings to one account in one INSERT
  -- would collide), locks every account in id order, and sums the legs per
  -- currency for an early, clear error (the deferred trigger on entries checks
  -- again at commit). All writers lock accounts in id order (holds too), so
  -- two entries touching the same accounts queue instead of deadlocking.
  with merged as (
    select l.account_id, sum(l.amount)::bigint as amount,
           bool_or(l.account_id is null or l.amount is null or l.amount = 0) as bad
      from unnest(p_legs) l group by l.account_id
  ), locked as (
    select a.id, a.currency from ledger.accounts a
     where a.id = any (array(select m.account_id from merged m where m.amount <> 0 and not m.bad))
     order by a.id
       for update
  ), per_currency as (
    select count(*) as legs, sum(m.amount) as total
      from locked k join merged m on m.account_id = k.id
     group by k.currency
  )
  select (select coalesce(array_agg(row(m.account_id, m.amount)::ledger.leg order by m.account_id) filter (where m.amount <> 0), '{}') from merged m),
         (select coalesce(bool_or(m.bad), false) from merged m),
         (select coalesce(sum(g.legs), 0) from per_currency g),
         (select count(*) filter (where g.total <> 0) from per_currency g)
    into v_legs, v_bad_leg, v_found, v_unbalanced;

  if v_bad_leg then
    raise exception 'Every leg needs an account and a non-zero amount' using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  if v_found <> cardinality(v_legs) then
    raise exception 'An account in this entry does not exist' using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if cardinality(v_legs) < 2 or v_unbalanced > 0 then
    raise exception 'An entry needs at least two accounts and must sum to zero in each currency'
      using errcode = 'PW120'; -- ENTRY_UNBALANCED
  end if;

  -- The entry and its postings in one statement. The posting trigger stamps
  -- sequence and balance_after from the (already locked) account rows; one
  -- statement-level trigger then brings all the accounts up to date at once.
  with e as (
    insert into ledger.entries (id, kind, memo, metadata, idempotency_ref, reverses_entry_id)
    values (v_entry_id, p_kind, p_memo, coalesce(p_metadata, '{}'), p_idempotency_ref, p_reverses_entry_id)
    returning id
  )
  insert into ledger.postings (entry_id, account_id, amount)
  select e.id, l.account_id, l.amount from e, unnest(v_legs) l order by l.account_id;

  return v_entry_id;
end;
$$;
comment on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) is
  'Posts one balanced entry atomically; raises INSUFFICIENT_FUNDS, WALLET_FROZEN, CURRENCY_MISMATCH, ENTRY_UNBALANCED, ACCOUNT_NOT_FOUND.';

-- Amounts are whole minor units from 1 to 10^15 (10 trillion rand): far
-- beyond any real payment, and far from overflowing a bigint balance.
create or replace function ledger.assert_amount(p_amount bigint)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_amount is null or p_amount <= 0 or p_amount > 1000000000000000 then
    raise exception 'The amount must be a whole number of minor units between 1 and 1000000000000000'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
end;
$$;

-- The common case: move an amount from one account to another.
create or replace function ledger.move(
  p_kind ledger.entry_kind,
  p_from uuid,
  p_to uuid,
  p_amount bigint,
  p_memo text default null,
  p_metadata jsonb default '{}',
  p_idempotency_ref text default null,
  p_entry_id uuid default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform ledger.assert_amount(p_amount);
  return ledger.post_entry(p_kind, array[row(p_from, -p_amount), row(p_to, p_amount)]::ledger.leg[],
                           p_memo, p_metadata, p_idempotency_ref, null, p_entry_id);
end;
$$;

revoke all on function ledger.post_entry(ledger.entry_kind, ledger.leg[], text, jsonb, text, uuid, uuid) from public;
revoke all on function ledger.assert_amount(bigint) from public;
revoke all on function ledger.move(ledger.entry_kind, uuid, uuid, bigint, text, jsonb, text, uuid) from public;
--! EndIncluded ledger/post_entry.sql
--! Included ledger/posting_triggers.sql
-- A posting is the only thing that moves a balance. Its sequence number and
-- balance_after are computed here from the locked account row, whatever the
-- writer supplied, and the account is brought up to date right after: so the
-- stored balance always equals the last balance_after, which equals the sum
-- of the account's postings, without ever re-summing history.

create or replace function ledger.tg_postings_before_insert()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account record;
begin
  -- One lookup for the account (locked: usually already by post_entry, in id
  -- order; locking again is cheap and serialises a hand-written INSERT just
  -- the same) and the entry the posting joins.
  select a.id, a.currency, a.balance, a.version, a.frozen, e.txid as entry_txid
    into v_account
    from ledger.accounts a
    left join ledger.entries e on e.id = new.entry_id
   where a.id = new.account_id
     for update of a;
  if not found then
    raise exception 'Account % does not exist', new.account_id using errcode = 'PW125'; -- ACCOUNT_NOT_FOUND
  end if;
  if v_account.entry_txid is distinct from pg_current_xact_id() then
    raise exception 'Postings can be added only to an entry written in the same transaction'
      using errcode = 'PW121'; -- LEDGER_IMMUTABLE
  end if;

  if new.currency is null then
    new.currency := v_account.currency;
  elsif new.currency <> v_account.currency then
    raise exception 'A % posting cannot go to the % account %', new.currency, v_account.currency, v_account.id
      using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  if new.amount < 0 and v_account.frozen then
    raise exception 'Wallet % is frozen and cannot be debited', v_account.id using errcode = 'PW102'; -- WALLET_FROZEN
  end if;

  new.sequence := v_account.version + 1;
  new.balance_after := v_account.balance + new.amount;  -- bigint overflow raises, never wraps
  new.created_at := now();
  return new;
end;
$$;
create or replace trigger _100_sequence before insert on ledger.postings
  for each row execute function ledger.tg_postings_before_insert();

-- AFTER, so that the accounts guard can see the posting that explains the
-- new balance. Once per INSERT statement, not per row: one UPDATE brings every
-- account of the entry up to date (the transition table holds the statement's
-- postings with the sequence and balance_after the row trigger stamped). Two
-- postings to one account in a single INSERT statement would get the same
-- sequence number and fail on the unique key: post_entry merges legs per
-- account for this reason.
create or replace function ledger.tg_postings_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update ledger.accounts a
     set balance = p.balance_after, version = p.sequence
    from new_postings p
   where a.id = p.account_id;
  return null;
end;
$$;
drop trigger if exists _200_apply on ledger.postings;
create trigger _200_apply after insert on ledger.postings
  referencing new table as new_postings
  for each statement execute function ledger.tg_postings_apply();

revoke all on function ledger.tg_postings_before_insert() from public;
revoke all on function ledger.tg_postings_apply() from public;
--! EndIncluded ledger/posting_triggers.sql
--! Included ledger/transfer.sql
-- User-to-user transfers: same currency, one idempotent entry.
-- app_private.transfer does the work for a caller already identified;
-- app_public.transfer is the GraphQL mutation and identifies the caller.

-- What transfer returns for an entry, as the sender sees it. Built from the
-- immutable entry, so a repeated request gets exactly the first answer.
create or replace function app_private.transfer_entry(p_entry_id uuid)
returns app_public.transfer_entry
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  select e.id, e.kind, d.amount, d.currency, e.memo, s.account_id, d.account_id, u.full_name, e.created_at
    from ledger.entries e
    join ledger.postings s on s.entry_id = e.id and s.amount < 0
    join ledger.postings d on d.entry_id = e.id and d.amount > 0
    join ledger.accounts da on da.id = d.account_id
    left join app_public.users u on u.id = da.owner_id
   where e.id = p_entry_id;
$$;

create or replace function app_private.transfer(
  p_caller uuid,
  p_from_wallet_id uuid,
  p_to_email text,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_memo text := nullif(btrim(p_memo), '');
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_recipient record;
begin
  perform ledger.assert_amount(p_amount);
  if length(v_memo) > 140 then
    raise exception 'The memo may be at most 140 characters' using errcode = 'PW111'; -- MEMO_INVALID
  end if;

  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'transfer',
    jsonb_build_object('from', p_from_wallet_id, 'to', lower(btrim(p_to_email)), 'amount', p_amount, 'memo', v_memo),
    v_entry_id);
  if v_first_entry_id is not null then
    return app_private.transfer_entry(v_first_entry_id);
  end if;

  -- The sender's wallet and the recipient with their wallet in its currency,
  -- in one statement. Someone else's wallet is reported exactly like a
  -- missing one.
  select f.id as from_id, f.currency, u.id as user_id, u.full_name, u.email_verified_at is not null as verified,
         a.id as wallet_id into v_recipient
    from ledger.accounts f
    left join app_public.users u on u.email = btrim(p_to_email)::citext
    left join ledger.accounts a on a.kind = 'user_wallet' and a.owner_id = u.id and a.currency = f.currency
   where f.id = p_from_wallet_id and f.kind = 'user_wallet' and f.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_from_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  if v_recipient.user_id is null then
    raise exception 'No user has the email address %', p_to_email using errcode = 'PW107'; -- RECIPIENT_NOT_FOUND
  end if;
  if v_recipient.user_id = p_caller then
    raise exception 'You cannot transfer money to yourself' using errcode = 'PW108'; -- TRANSFER_TO_SELF
  end if;
  -- Money goes only to addresses proven to belong to someone (issue 9 §4).
  if not v_recipient.verified then
    raise exception '% has not verified their email address yet', p_to_email using errcode = 'PW007'; -- RECIPIENT_UNVERIFIED
  end if;
  if v_recipient.wallet_id is null then
    raise exception 'The recipient has no % wallet', v_recipient.currency using errcode = 'PW104'; -- CURRENCY_MISMATCH
  end if;

  -- Accounts are locked only in here, after every check above, to keep the
  -- time wallets stay locked short (post_entry directly: move would only
  -- check the amount again).
  perform ledger.post_entry('transfer',
                            array[row(v_recipient.from_id, -p_amount), row(v_recipient.wallet_id, p_amount)]::ledger.leg[],
                            v_memo, jsonb_build_object('from_user', p_caller, 'to_user', v_recipient.user_id),
                            v_caller || '/' || p_idempotency_key, null, v_entry_id);
  -- The entry as transfer_entry(v_entry_id) would read it back.
  return row(v_entry_id, 'transfer', p_amount, v_recipient.currency, v_memo, v_recipient.from_id, v_recipient.wallet_id,
             v_recipient.full_name, now())::app_public.transfer_entry;
end;
$$;

comment on type app_public.transfer_entry is 'A transfer as its sender sees it.';
comment on column app_public.transfer_entry.id is E'@notNull\nThe journal entry''s id.';
comment on column app_public.transfer_entry.kind is '@notNull';
comment on column app_public.transfer_entry.amount is E'@notNull\nMinor units moved.';
comment on column app_public.transfer_entry.currency is '@notNull';
comment on column app_public.transfer_entry.from_wallet_id is '@notNull';
comment on column app_public.transfer_entry.to_wallet_id is '@notNull';
comment on column app_public.transfer_entry.created_at is E'@notNull\nWhen the transfer was recorded.';

-- The GraphQL mutation `transfer`.
create or replace function app_public.transfer(
  from_wallet_id uuid,
  to_email text,
  amount bigint,
  idempotency_key text,
  memo text default null
)
returns app_public.transfer_entry
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to transfer money' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  return app_private.transfer(v_caller, from_wallet_id, to_email, amount, idempotency_key, memo);
end;
$$;
comment on function app_public.transfer(uuid, text, bigint, text, text) is
  E'Moves `amount` minor units from one of your wallets to the wallet of the same currency of the user with email `toEmail`. '
  'Repeating a request with the same `idempotencyKey` returns the first result and moves nothing; reusing a key for a different request fails with IDEMPOTENCY_KEY_REUSED.';

-- A payment from a wallet to the fees account: the "hot system account" case.
-- Every such payment credits one logical account, sharded (system_account).
create or replace function app_private.pay_fee(
  p_caller uuid,
  p_wallet_id uuid,
  p_amount bigint,
  p_idempotency_key text,
  p_memo text default null
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller text := 'user:' || p_caller;
  v_entry_id uuid := uuidv7();
  v_first_entry_id uuid;
  v_from ledger.accounts;
begin
  perform ledger.assert_amount(p_amount);
  v_first_entry_id := app_private.idempotency_claim(v_caller, p_idempotency_key, 'pay_fee',
    jsonb_build_object('wallet', p_wallet_id, 'amount', p_amount, 'memo', p_memo), v_entry_id);
  if v_first_entry_id is not null then
    return v_first_entry_id;
  end if;
  select a.* into v_from from ledger.accounts a
   where a.id = p_wallet_id and a.kind = 'user_wallet' and a.owner_id = p_caller;
  if not found then
    raise exception 'Wallet % not found', p_wallet_id using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  return ledger.post_entry('fee', array[row(v_from.id, -p_amount), row(ledger.system_account('fees', v_from.currency), p_amount)]::ledger.leg[],
                           p_memo, '{}', v_caller || '/' || p_idempotency_key, null, v_entry_id);
end;
$$;

revoke all on function app_private.transfer_entry(uuid) from public;
revoke all on function app_private.transfer(uuid, uuid, text, bigint, text, text) from public;
revoke all on function app_private.pay_fee(uuid, uuid, bigint, text, text) from public;
revoke all on function app_public.transfer(uuid, text, bigint, text, text) from public;
grant execute on function app_public.transfer(uuid, text, bigint, text, text) to app_user;
--! EndIncluded ledger/transfer.sql
-- The API counts rate-limit hits in the process and adds them in batches.
--! Included abuse/rate_limit.sql
-- Rate limits kept in PostgreSQL (no extra server). The API calls
-- app_private.rate_limit_hit once per GraphQL request, as the authenticator,
-- with the buckets the request counts against (per IP, per user, and the
-- stricter ones for sign-in and money mutations; src/http/rate-limit.ts) and
-- their limits. Fixed windows: each bucket counts hits in the current window
-- of p_window_seconds; over the limit, the answer is the seconds until the
-- window ends (Retry-After). Hits over the limit still count.

create or replace function app_private.rate_limit_hit(p_buckets text[], p_limits int[], p_window_seconds int)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_window_seconds int := greatest(coalesce(p_window_seconds, 60), 1);
  v_window timestamptz := to_timestamp(floor(extract(epoch from clock_timestamp()) / v_window_seconds) * v_window_seconds);
  v_over boolean;
begin
  -- Sorted and distinct: concurrent requests lock counter rows in one order.
  with wanted as (
    select distinct on (b.bucket) b.bucket, b.lim
      from unnest(p_buckets, p_limits) as b(bucket, lim)
     where b.bucket is not null and b.lim > 0
     order by b.bucket, b.lim
  ), hit as (
    insert into app_private.rate_limit_counters as c (bucket, window_start, hits)
    select w.bucket, v_window, 1 from wanted w order by w.bucket
    on conflict (bucket, window_start) do update set hits = c.hits + 1
    returning c.bucket, c.hits
  )
  select coalesce(bool_or(hit.hits > wanted.lim), false) into v_over
    from hit join wanted using (bucket);

  -- Now and then, forget windows that have ended.
  if random() < 0.002 then
    delete from app_private.rate_limit_counters c where c.window_start < v_window;
  end if;

  if v_over then
    return greatest(1, ceil(extract(epoch from (v_window + make_interval(secs => v_window_seconds) - clock_timestamp())))::int);
  end if;
  return 0;
end;
$$;
comment on function app_private.rate_limit_hit(text[], int[], int) is
  'Counts one hit against each bucket (limit <= 0: not counted); returns 0, or the seconds to wait when any bucket is over its limit.';

revoke all on app_private.rate_limit_counters from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function app_private.rate_limit_hit(text[], int[], int) from public;
grant execute on function app_private.rate_limit_hit(text[], int[], int) to authenticator;

-- The batched form the API uses (src/http/abuse.ts, RateCounter): each API
-- process counts hits itself and adds them here every ~100 ms, one statement
-- for all its buckets; returns each bucket's total in its window, every
-- process's hits included. Windows are given by the caller (epoch ms of the
-- window start), so a hit counts in the window it happened in.
create or replace function app_private.rate_limit_add(p_buckets text[], p_window_ms bigint[], p_hits int[], p_window_seconds int)
returns table (bucket text, window_ms bigint, hits int)
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
#variable_conflict use_column
begin
  -- Now and then, forget windows that have ended.
  if random() < 0.01 then
    delete from app_private.rate_limit_counters c
     where c.window_start < clock_timestamp() - make_interval(secs => greatest(coalesce(p_window_seconds, 60), 1));
  end if;
  -- Sorted: concurrent flushes lock counter rows in one order.
  return query
    insert into app_private.rate_limit_counters as c (bucket, window_start, hits)
    select b.bucket, to_timestamp(b.window_ms / 1000.0), sum(b.hits)::int
      from unnest(p_buckets, p_window_ms, p_hits) as b(bucket, window_ms, hits)
     where b.bucket is not null and b.hits > 0
     group by b.bucket, b.window_ms
     order by b.bucket, b.window_ms
    on conflict (bucket, window_start) do update set hits = c.hits + excluded.hits
    returning c.bucket, (extract(epoch from c.window_start) * 1000)::bigint, c.hits;
end;
$$;
comment on function app_private.rate_limit_add(text[], bigint[], int[], int) is
  'Adds hits counted by one API process to the shared counters; returns every given bucket''s total in its window.';

revoke all on function app_private.rate_limit_add(text[], bigint[], int[], int) from public;
grant execute on function app_private.rate_limit_add(text[], bigint[], int[], int) to authenticator;
--! EndIncluded abuse/rate_limit.sql

-- ==== merge: ledger-perf with sec-accounts ====
-- The per-field weights moved into the API's RateCounter (src/http/abuse.ts),
-- which adds hits with app_private.rate_limit_add; the weighted per-request
-- rate_limit_hit of migration 000006 has no caller left.
drop function if exists app_private.rate_limit_hit(text[], int[], int, int[]);

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

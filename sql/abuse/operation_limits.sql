-- Weighted rate-limit hits (issue 9 §2): a request counts once against its
-- per-address and per-user buckets, but every sign-in or money field it
-- carries counts against the sign-in or money bucket, so one document with
-- five transfers uses five of the money allowance. Same fixed windows and
-- counters as app_private.rate_limit_hit (rate_limit.sql), which remains for
-- callers that count one hit per bucket.

create or replace function app_private.rate_limit_hit(p_buckets text[], p_limits int[], p_window_seconds int, p_hits int[])
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
  with given as (
    select b.bucket, b.lim, greatest(coalesce(b.hits, 1), 1) as hits
      from unnest(p_buckets, p_limits, p_hits) as b(bucket, lim, hits)
     where b.bucket is not null and b.lim > 0
  ), wanted as (
    select g.bucket, min(g.lim) as lim, sum(g.hits)::int as hits from given g group by g.bucket
  ), hit as (
    insert into app_private.rate_limit_counters as c (bucket, window_start, hits)
    select w.bucket, v_window, w.hits from wanted w order by w.bucket
    on conflict (bucket, window_start) do update set hits = c.hits + excluded.hits
    returning c.bucket, c.hits
  )
  select coalesce(bool_or(hit.hits > wanted.lim), false) into v_over
    from hit join wanted using (bucket);

  if random() < 0.002 then
    delete from app_private.rate_limit_counters c where c.window_start < v_window;
  end if;

  if v_over then
    return greatest(1, ceil(extract(epoch from (v_window + make_interval(secs => v_window_seconds) - clock_timestamp())))::int);
  end if;
  return 0;
end;
$$;
comment on function app_private.rate_limit_hit(text[], int[], int, int[]) is
  'Counts p_hits[i] hits against bucket i (limit <= 0: not counted); returns 0, or the seconds to wait when any bucket is over its limit.';

revoke all on function app_private.rate_limit_hit(text[], int[], int, int[]) from public;
grant execute on function app_private.rate_limit_hit(text[], int[], int, int[]) to authenticator;

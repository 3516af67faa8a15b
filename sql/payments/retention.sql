-- Retention of stored Revio deliveries (issue 9 §3). The graphile-worker cron
-- task revio.purge_deliveries calls this daily with REVIO_DELIVERY_RETENTION_DAYS
-- (default 90) and REVIO_BAD_DELIVERY_RETENTION_DAYS (default 7). What matters
-- for money stays elsewhere: the ledger entries, the deposit and withdrawal
-- rows (status, Revio ids, amounts, failure reasons) and app_private.revio_events,
-- the deduplication keys, which are small and never purged.
create or replace function app_private.purge_revio_deliveries(p_good_days int, p_bad_days int, p_batch int default 10000)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_good timestamptz := now() - make_interval(days => greatest(coalesce(p_good_days, 90), 1));
  v_bad timestamptz := now() - make_interval(days => greatest(coalesce(p_bad_days, 7), 1));
  v_deleted bigint;
begin
  -- In batches, so one run never holds a huge delete open.
  delete from app_private.revio_deliveries d
   where d.id in (select x.id from app_private.revio_deliveries x
                   where (x.signature_ok and x.received_at < v_good)
                      or (not x.signature_ok and x.received_at < v_bad)
                   limit greatest(coalesce(p_batch, 10000), 1));
  get diagnostics v_deleted = row_count;
  return v_deleted;
end;
$$;
comment on function app_private.purge_revio_deliveries(int, int, int) is
  'Deletes up to p_batch stored Revio deliveries older than their retention (signed: p_good_days, bad signature: p_bad_days); returns how many.';

revoke all on function app_private.purge_revio_deliveries(int, int, int) from public;

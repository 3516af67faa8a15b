-- Idempotency for money-moving requests. A request claims (caller, key) by
-- inserting the record in its own transaction. Identical requests racing it
-- wait on the primary key until it commits, then find the record and return
-- the first result; if it rolls back (the transfer failed), one of them takes
-- over. So 20 identical requests at once make exactly one entry. A failed
-- request leaves no record: repeating it runs it again.

-- Claims (caller, key) for a request that will write the entry p_entry_id
-- (an id chosen by the caller, so the record is complete when inserted and
-- never updated). Returns null when the key is now ours: go ahead and post
-- that entry in this transaction (the foreign key, deferred, insists on it).
-- Returns the first request's entry when the key was used for the same
-- request; refuses a different request with IDEMPOTENCY_KEY_REUSED.
create or replace function app_private.idempotency_claim(
  p_caller text,
  p_key text,
  p_operation text,
  p_request jsonb,
  p_entry_id uuid
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  -- jsonb prints keys in a fixed order, so equal requests hash equally.
  v_fingerprint bytea := sha256(convert_to(p_operation || ':' || p_request::text, 'UTF8'));
  v_record app_private.idempotency_records;
begin
  if p_key is null or length(p_key) not between 1 and 200 then
    raise exception 'An idempotency key of 1 to 200 characters is required' using errcode = 'PW110'; -- IDEMPOTENCY_KEY_INVALID
  end if;
  insert into app_private.idempotency_records (caller, key, operation, fingerprint, entry_id)
  values (p_caller, p_key, p_operation, v_fingerprint, p_entry_id)
  on conflict (caller, key) do nothing;
  if found then
    return null;
  end if;
  select r.* into v_record from app_private.idempotency_records r where r.caller = p_caller and r.key = p_key;
  if v_record.fingerprint <> v_fingerprint or v_record.operation <> p_operation then
    raise exception 'This idempotency key was already used for a different request' using errcode = 'PW109'; -- IDEMPOTENCY_KEY_REUSED
  end if;
  return v_record.entry_id;
end;
$$;

-- Deletes records older than the window, in batches so that no long lock is
-- held; returns how many went. After this a replayed key runs again, so the
-- window must exceed any client's retry horizon (default 7 days).
create or replace function app_private.purge_idempotency_records(p_older_than interval default '7 days', p_batch int default 10000)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_total bigint := 0;
  v_batch bigint;
begin
  loop
    delete from app_private.idempotency_records r
     where (r.caller, r.key) in (select o.caller, o.key from app_private.idempotency_records o
                                  where o.created_at < now() - p_older_than
                                  limit p_batch);
    get diagnostics v_batch = row_count;
    v_total := v_total + v_batch;
    exit when v_batch < p_batch;
  end loop;
  return v_total;
end;
$$;

revoke all on app_private.idempotency_records from public, app_anonymous, app_user, app_admin, app_auditor, authenticator;
revoke all on function app_private.idempotency_claim(text, text, text, jsonb, uuid) from public;
revoke all on function app_private.purge_idempotency_records(interval, int) from public;

-- ==== sec-admin ====
-- Issue 9 §1, §3, §5: maker-checker one admin cannot defeat, a webhook route
-- that cannot fill the disk, least privilege for the worker. Tables here
-- (idempotent: db:watch re-runs this file); functions, views, policies and
-- grants in the included sql/ files below.

-- §1 What a maker-checker function returns instead of raising a refusal
-- (sql/admin/maker_checker.sql): code and message when refused, else the id.
do $$ begin
  create type app_private.admin_outcome as (code text, message text, id uuid);
exception when duplicate_object then null;
end $$;

do $$ begin
  create type app_public.role_change_status as enum ('pending', 'approved', 'rejected');
exception when duplicate_object then null;
end $$;

-- §1 Granting or removing the admin role: requested by one admin, approved by another.
create table if not exists app_public.role_change_requests (
  id            uuid primary key default uuidv7(),
  user_id       uuid not null references app_public.users,
  from_role     app_public.user_role not null,
  role          app_public.user_role not null,
  reason        text not null check (length(reason) between 1 and 500),
  status        app_public.role_change_status not null default 'pending',
  requested_by  uuid not null references app_public.users,
  requested_at  timestamptz not null default now(),
  decided_by    uuid references app_public.users,
  decided_at    timestamptz,
  decision_note text check (length(decision_note) <= 500),
  constraint role_change_requests_changes check (role <> from_role),
  constraint role_change_requests_not_self check (requested_by <> user_id),
  constraint role_change_requests_four_eyes check (status <> 'approved' or (decided_by <> requested_by and decided_by <> user_id)),
  constraint role_change_requests_decided check ((status = 'pending') = (decided_by is null and decided_at is null))
);
create unique index if not exists role_change_requests_one_pending on app_public.role_change_requests (user_id) where status = 'pending';
create index if not exists role_change_requests_decided_idx on app_public.role_change_requests (decided_at) where status = 'approved';

-- §3 Deliveries keep the body's SHA-256 and size; a bad-signature delivery
-- keeps at most its first 1 kB (the table refuses more; NOT VALID leaves rows
-- stored before this change to the retention job).
alter table app_private.revio_deliveries add column if not exists body_sha256 text;
alter table app_private.revio_deliveries add column if not exists body_bytes int;
do $$ begin
  alter table app_private.revio_deliveries add constraint revio_deliveries_bad_body_small
    check (signature_ok or octet_length(body) <= 1024) not valid;
exception when duplicate_object then null;
end $$;

--!include admin/maker_checker.sql
--!include admin/adjustments.sql
--!include admin/role_changes.sql
--!include admin/users.sql
--!include privacy/erasure.sql
--!include payments/revio_events.sql
--!include payments/retention.sql
--!include audit/payments.sql
--!include audit/ledger.sql
--!include worker/grants.sql

--! Previous: sha1:460a613fa257d4abd639ed9c38a4b5ae82bc2367
--! Hash: sha1:788c0ae403825224553c4e7fc6b4abd21f942dd7
--! Message: maker-checker, webhook retention, worker role

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

--! Included admin/maker_checker.sql
-- Maker-checker that one admin cannot defeat alone (issue 9 §1). Shared by
-- balance adjustments (sql/admin/adjustments.sql) and role changes
-- (sql/admin/role_changes.sql).
--
-- Refusals are *returned*, not raised. A raised exception would roll back the
-- admin-log line that records the refusal (PostgreSQL has no autonomous
-- transactions), so each maker-checker function does its policy checks before
-- changing anything, and on a refusal writes one 'refused' line to the admin
-- log and returns an app_private.admin_outcome with the stable code. The
-- transaction then commits only that log line; the GraphQL plugin
-- (src/http/graphql/admin-plugin.ts) turns the code into an error. Malformed
-- input (no reason, unknown id) still raises: nothing was attempted.

-- How long a role change ties two admins together (ADMIN_VOUCH_WINDOW_DAYS,
-- passed by the API as pgwallet.admin_vouch_window_days; 7 days otherwise).
create or replace function app_private.admin_vouch_window()
returns interval
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select make_interval(days => coalesce(nullif(current_setting('pgwallet.admin_vouch_window_days', true), '')::int, 7));
$$;

-- True when one of the two admins requested or approved a role change of the
-- other within the window. The issue asks for one direction (the approver
-- vouched for the requester); a bank's review asks for both, because the
-- account that was promoted is as likely to be the attacker's second account
-- as the one that promoted it.
create or replace function app_private.admins_recently_linked(p_a uuid, p_b uuid)
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  select exists (
    select from app_public.role_change_requests r
     where r.status = 'approved'
       and r.decided_at > now() - app_private.admin_vouch_window()
       and ((r.user_id = p_b and p_a in (r.requested_by, r.decided_by))
         or (r.user_id = p_a and p_b in (r.requested_by, r.decided_by))));
$$;

-- Logs a refused attempt and returns the outcome that carries its code.
create or replace function app_private.admin_refuse(
  p_attempt text, p_code text, p_message text, p_target_type text, p_target_id text, p_details jsonb default '{}'
)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.log_admin_action('refused', p_target_type, p_target_id,
    coalesce(p_details, '{}') || jsonb_build_object('attempt', p_attempt, 'code', p_code, 'message', p_message));
  return row(p_code, p_message, null)::app_private.admin_outcome;
end;
$$;

create or replace function app_private.admin_ok(p_id uuid)
returns app_private.admin_outcome
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select row(null, null, p_id)::app_private.admin_outcome;
$$;

revoke all on function app_private.admin_vouch_window() from public;
revoke all on function app_private.admins_recently_linked(uuid, uuid) from public;
revoke all on function app_private.admin_refuse(text, text, text, text, text, jsonb) from public;
revoke all on function app_private.admin_ok(uuid) from public;
--! EndIncluded admin/maker_checker.sql
--! Included admin/adjustments.sql
-- Manual balance adjustments, maker-checker: one admin requests (never for
-- their own wallet), a different admin approves (which posts the entry through the ledger's functions,
-- between the wallet and the currency's system adjustments account) or
-- rejects. Both decisions are recorded on the row and in the admin log.

alter table app_public.balance_adjustments enable row level security;
drop policy if exists select_for_admins on app_public.balance_adjustments;
create policy select_for_admins on app_public.balance_adjustments
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

-- The first version exposed these as app_public functions that raised every
-- refusal; they now return an outcome (sql/admin/maker_checker.sql) and the
-- GraphQL mutations are in src/http/graphql/admin-plugin.ts.
drop function if exists app_public.admin_request_adjustment(uuid, bigint, text);
drop function if exists app_public.admin_decide_adjustment(uuid, boolean, text);

create or replace function app_private.admin_request_adjustment(p_wallet_id uuid, p_amount bigint, p_reason text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(p_reason);
  v_wallet ledger.accounts;
  v_row app_public.balance_adjustments;
begin
  if p_amount is null or p_amount = 0 or abs(p_amount) > 1000000000000000 then
    raise exception 'The amount must be a non-zero whole number of minor units (negative debits the wallet)'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  select a.* into v_wallet from ledger.accounts a where a.id = p_wallet_id and a.kind = 'user_wallet';
  if v_wallet.id is null then
    raise exception 'No such wallet' using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  if v_wallet.owner_id = v_admin then
    return app_private.admin_refuse('request_adjustment', 'ADJUSTMENT_OWN_WALLET', -- returned, not raised
      'Admins cannot request an adjustment to their own wallet; ask another admin', 'wallet', p_wallet_id::text,
      jsonb_build_object('amount', p_amount, 'reason', v_reason));
  end if;
  insert into app_public.balance_adjustments (wallet_id, amount, currency, reason, requested_by)
  values (p_wallet_id, p_amount, v_wallet.currency, v_reason, v_admin)
  returning * into v_row;
  perform app_private.log_admin_action('request_adjustment', 'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency, 'reason', v_reason));
  return app_private.admin_ok(v_row.id);
end;
$$;
comment on function app_private.admin_request_adjustment(uuid, bigint, text) is
  'Admins only: ask for a manual balance adjustment (positive credits, negative debits) to someone else''s wallet. Another admin must approve it. Logged; refusals too.';

-- Posts the approved entry through the ledger, between the wallet and the
-- currency's system adjustments account.
create or replace function app_private.post_adjustment(p_row app_public.balance_adjustments, p_approver uuid)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_system uuid := ledger.system_account('adjustments', p_row.currency);
  v_memo text := left('Adjustment: ' || p_row.reason, 140);
  v_meta jsonb := jsonb_build_object('adjustment_id', p_row.id, 'requested_by', p_row.requested_by, 'approved_by', p_approver);
begin
  if p_row.amount > 0 then
    return ledger.move('adjustment', v_system, p_row.wallet_id, p_row.amount, v_memo, v_meta);
  end if;
  return ledger.move('adjustment', p_row.wallet_id, v_system, -p_row.amount, v_memo, v_meta);
end;
$$;

-- Approving needs a second admin who does not own the wallet and is not tied
-- to the requester by a recent role change; rejecting is always allowed.
create or replace function app_private.admin_decide_adjustment(p_adjustment_id uuid, p_approve boolean, p_note text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(p_note);
  v_row app_public.balance_adjustments;
  v_owner uuid;
  v_refusal text[];
begin
  if p_approve is null then
    raise exception 'Say whether to approve' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  select b.* into v_row from app_public.balance_adjustments b where b.id = p_adjustment_id for update;
  if v_row.id is null then
    raise exception 'No such balance adjustment' using errcode = 'PW302'; -- ADJUSTMENT_NOT_FOUND
  end if;
  if v_row.status <> 'pending' then
    raise exception 'This adjustment was already %', v_row.status using errcode = 'PW303'; -- ADJUSTMENT_NOT_PENDING
  end if;
  select a.owner_id into v_owner from ledger.accounts a where a.id = v_row.wallet_id;
  if p_approve then
    v_refusal := case
      when v_row.requested_by = v_admin then
        array['ADMIN_SELF_APPROVAL', 'Another admin must approve an adjustment you requested'] -- returned
      when v_owner = v_admin then
        array['ADJUSTMENT_OWN_WALLET', 'Another admin must approve an adjustment to your own wallet'] -- returned
      when app_private.admins_recently_linked(v_admin, v_row.requested_by) then
        array['ADMIN_RECENTLY_VOUCHED', 'You cannot approve a request by an admin whose role you (or who your role) changed recently'] -- returned
    end;
    if v_refusal is not null then
      return app_private.admin_refuse('approve_adjustment', v_refusal[1], v_refusal[2], 'balance_adjustment', v_row.id::text,
        jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'requested_by', v_row.requested_by));
    end if;
    update app_public.balance_adjustments b
       set status = 'approved', decided_by = v_admin, decided_at = now(), decision_note = v_note,
           entry_id = app_private.post_adjustment(v_row, v_admin)
     where b.id = v_row.id
    returning * into v_row;
  else
    update app_public.balance_adjustments b
       set status = 'rejected', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where b.id = v_row.id
    returning * into v_row;
  end if;
  perform app_private.log_admin_action(case when v_row.status = 'approved' then 'approve_adjustment' else 'reject_adjustment' end,
    'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency,
                       'requested_by', v_row.requested_by, 'entry_id', v_row.entry_id, 'note', v_note));
  return app_private.admin_ok(v_row.id);
end;
$$;
comment on function app_private.admin_decide_adjustment(uuid, boolean, text) is
  'Admins only: approve (posts the entry) or reject a pending adjustment. Refused (and logged) when the approver requested it, owns the wallet, or is tied to the requester by a recent role change.';

comment on table app_public.balance_adjustments is
  E'@behavior -insert -update -delete\nAdmins only: manual balance adjustments, requested by one admin and approved or rejected by another.';
comment on column app_public.balance_adjustments.amount is E'@behavior -filterBy -orderBy\nMinor units: positive credits the wallet, negative debits it.';
comment on constraint balance_adjustments_entry_id_key on app_public.balance_adjustments is '@behavior -single';

revoke all on app_public.balance_adjustments from public, app_anonymous, app_user, app_auditor, authenticator;
grant select on app_public.balance_adjustments to app_admin;
revoke all on function app_private.admin_request_adjustment(uuid, bigint, text) from public;
revoke all on function app_private.admin_decide_adjustment(uuid, boolean, text) from public;
revoke all on function app_private.post_adjustment(app_public.balance_adjustments, uuid) from public;
grant execute on function app_private.admin_request_adjustment(uuid, bigint, text) to app_admin;
grant execute on function app_private.admin_decide_adjustment(uuid, boolean, text) to app_admin;
--! EndIncluded admin/adjustments.sql
--! Included admin/role_changes.sql
-- Granting or removing the admin role is a maker-checker request (issue 9 §1):
-- one admin requests it (never for themselves), a different admin approves
-- it (never the person concerned, nor an admin tied to the requester by a
-- recent role change). The first admin still comes only from
-- `npm run admin:grant` (app_private.grant_admin, the owner connection).
-- Refusals are returned and logged; see sql/admin/maker_checker.sql.

alter table app_public.role_change_requests enable row level security;
drop policy if exists select_for_admins on app_public.role_change_requests;
create policy select_for_admins on app_public.role_change_requests
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

create or replace function app_private.admin_request_role_change(p_user_id uuid, p_role app_public.user_role, p_reason text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(p_reason);
  v_current app_public.user_role;
  v_id uuid;
begin
  if p_user_id = v_admin then
    return app_private.admin_refuse('request_role_change', 'ADMIN_SELF_ACTION', -- returned, not raised
      'Admins cannot change their own role; ask another admin', 'user', p_user_id::text, jsonb_build_object('to', p_role));
  end if;
  select u.role into v_current from app_public.users u where u.id = p_user_id and u.erased_at is null for update;
  if not found or p_role is null then
    raise exception 'No such user' using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_current = p_role then
    raise exception 'The user already has the role %', p_role using errcode = 'PW401'; -- ROLE_UNCHANGED
  end if;
  if exists (select from app_public.role_change_requests r where r.user_id = p_user_id and r.status = 'pending') then
    raise exception 'A role change for this user is already waiting for approval' using errcode = 'PW402'; -- ROLE_CHANGE_PENDING
  end if;
  insert into app_public.role_change_requests (user_id, from_role, role, reason, requested_by)
  values (p_user_id, v_current, p_role, v_reason, v_admin)
  returning id into v_id;
  perform app_private.log_admin_action('request_role_change', 'user', p_user_id::text,
    jsonb_build_object('request_id', v_id, 'from', v_current, 'to', p_role, 'reason', v_reason));
  return app_private.admin_ok(v_id);
end;
$$;
comment on function app_private.admin_request_role_change(uuid, app_public.user_role, text) is
  'Admins only: ask for a user to become an admin or a plain user (never yourself). Another admin must approve. Logged; refusals too.';

create or replace function app_private.admin_decide_role_change(p_request_id uuid, p_approve boolean, p_note text)
returns app_private.admin_outcome
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(p_note);
  v_row app_public.role_change_requests;
  v_refusal text[];
begin
  if p_approve is null then
    raise exception 'Say whether to approve' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  select r.* into v_row from app_public.role_change_requests r where r.id = p_request_id for update;
  if v_row.id is null then
    raise exception 'No such role change request' using errcode = 'PW403'; -- ROLE_CHANGE_NOT_FOUND
  end if;
  if v_row.status <> 'pending' then
    raise exception 'This role change was already %', v_row.status using errcode = 'PW404'; -- ROLE_CHANGE_NOT_PENDING
  end if;
  if p_approve then
    v_refusal := case
      when v_row.requested_by = v_admin then
        array['ADMIN_SELF_APPROVAL', 'Another admin must approve a role change you requested'] -- returned
      when v_row.user_id = v_admin then
        array['ADMIN_SELF_ACTION', 'Admins cannot approve a change of their own role'] -- returned
      when app_private.admins_recently_linked(v_admin, v_row.requested_by) then
        array['ADMIN_RECENTLY_VOUCHED', 'You cannot approve a request by an admin whose role you (or who your role) changed recently'] -- returned
    end;
    if v_refusal is not null then
      return app_private.admin_refuse('approve_role_change', v_refusal[1], v_refusal[2], 'user', v_row.user_id::text,
        jsonb_build_object('request_id', v_row.id, 'to', v_row.role, 'requested_by', v_row.requested_by));
    end if;
    -- Lock the user; the role must still be what the request saw.
    perform from app_public.users u where u.id = v_row.user_id and u.role = v_row.from_role and u.erased_at is null for update;
    if not found then
      raise exception 'The user''s role changed since the request; request again' using errcode = 'PW401'; -- ROLE_UNCHANGED
    end if;
    update app_public.users u set role = v_row.role where u.id = v_row.user_id;
    -- Their sessions end, so the next sign-in carries the new role (a demoted
    -- admin's token dies at once anyway: current_admin_id reads users.role).
    update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = v_row.user_id and s.revoked_at is null;
    update app_public.role_change_requests r
       set status = 'approved', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where r.id = v_row.id returning * into v_row;
  else
    update app_public.role_change_requests r
       set status = 'rejected', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where r.id = v_row.id returning * into v_row;
  end if;
  perform app_private.log_admin_action(case when v_row.status = 'approved' then 'approve_role_change' else 'reject_role_change' end,
    'user', v_row.user_id::text,
    jsonb_build_object('request_id', v_row.id, 'from', v_row.from_role, 'to', v_row.role,
                       'requested_by', v_row.requested_by, 'note', v_note));
  return app_private.admin_ok(v_row.id);
end;
$$;
comment on function app_private.admin_decide_role_change(uuid, boolean, text) is
  'Admins only: approve (the role changes, sessions end) or reject a pending role change. Refused (and logged) for the requester, the person concerned, and admins tied to the requester by a recent role change.';

comment on table app_public.role_change_requests is
  E'@behavior -insert -update -delete\nAdmins only: requests to grant or remove the admin role, made by one admin and approved or rejected by another.';
comment on column app_public.role_change_requests.role is 'The role asked for.';
comment on column app_public.role_change_requests.from_role is 'The role the user had when the request was made.';

revoke all on app_public.role_change_requests from public, app_anonymous, app_user, app_auditor, authenticator;
grant select on app_public.role_change_requests to app_admin;
revoke all on function app_private.admin_request_role_change(uuid, app_public.user_role, text) from public;
revoke all on function app_private.admin_decide_role_change(uuid, boolean, text) from public;
grant execute on function app_private.admin_request_role_change(uuid, app_public.user_role, text) to app_admin;
grant execute on function app_private.admin_decide_role_change(uuid, boolean, text) to app_admin;
--! EndIncluded admin/role_changes.sql
--! Included admin/users.sql
-- Admins list users and wallets, and change roles. A user never raises their
-- own role: app_user may update only full_name (sql/auth/users_policies.sql),
-- and the role changes only through a role-change request one admin makes and
-- another approves (sql/admin/maker_checker.sql), or app_private.grant_admin
-- (npm run admin:grant, the owner connection: how the first admin is made).

-- Admins see every user (allUsers); everyone else still sees only themselves.
drop policy if exists select_all_for_admins on app_public.users;
create policy select_all_for_admins on app_public.users
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

-- Every wallet with its owner, for admins (freeze/unfreeze, adjustments).
create or replace view app_public.admin_wallets with (security_barrier) as
  select a.id,
         a.owner_id,
         u.email as owner_email,
         u.full_name as owner_name,
         a.currency,
         a.balance,
         a.balance - a.held as available_balance,
         a.held as held_balance,
         a.frozen,
         a.created_at
    from ledger.accounts a
    join app_public.users u on u.id = a.owner_id
   where a.kind = 'user_wallet'
     and (select app_private.current_admin_id()) is not null;
comment on view app_public.admin_wallets is
  E'@primaryKey id\n@behavior -insert -update -delete\nAdmins only: every user wallet with its owner. Amounts in minor units.';
comment on column app_public.admin_wallets.id is E'@notNull';
comment on column app_public.admin_wallets.owner_id is E'@notNull';
comment on column app_public.admin_wallets.owner_email is E'@notNull';
comment on column app_public.admin_wallets.owner_name is E'@notNull';
comment on column app_public.admin_wallets.currency is E'@notNull';
comment on column app_public.admin_wallets.balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.available_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.held_balance is E'@notNull\n@behavior -filterBy -orderBy';
comment on column app_public.admin_wallets.frozen is E'@notNull';
comment on column app_public.admin_wallets.created_at is E'@notNull\n@behavior -filterBy';

-- Role changes are maker-checker requests (sql/admin/maker_checker.sql); the
-- direct setter of the first version is gone so no single admin can promote
-- a second account of their own.
drop function if exists app_public.admin_set_user_role(uuid, app_public.user_role, text);

-- npm run admin:grant -- <email>: the way to create the first admin. Runs on
-- the owner connection (no API role may execute it) and is logged as 'cli'.
create or replace function app_private.grant_admin(p_email text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.email = btrim(p_email)::citext and u.erased_at is null for update;
  if v_user.id is null then
    raise exception 'No user has the email address %', p_email using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_user.role <> 'admin' then
    update app_public.users set role = 'admin' where id = v_user.id;
    update app_private.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = v_user.id and s.revoked_at is null;
    perform app_private.log_admin_action('grant_admin', 'user', v_user.id::text, jsonb_build_object('from', v_user.role, 'to', 'admin'));
  end if;
  return v_user.id;
end;
$$;

revoke all on app_public.admin_wallets from public, app_anonymous, app_user;
grant select on app_public.admin_wallets to app_admin;
revoke all on function app_private.grant_admin(text) from public;
--! EndIncluded admin/users.sql
--! Included privacy/erasure.sql
-- GDPR erasure. The ledger keeps every entry and balance; what identifies the
-- person is removed or replaced: email (an unguessable pseudonym, so sign-in
-- and transfers by email find nobody), name, password hash, sessions and
-- refresh tokens, sign-in attempts, bank account details (the encrypted
-- number is deleted), and the `client` fields inside stored Revio deliveries.
-- Wallets are frozen. The person may erase themselves only with nothing left:
-- every wallet at zero and no deposit or withdrawal still open. An admin may
-- erase anyone (the balance then stays in the frozen wallet).

-- Rewrites the paths of a stored Revio body that hold the person's data: every
-- field of its `client` object (email, full_name, phone, bank_account,
-- personal_code, addresses…) except `country`. Never a text replace of the
-- name or email: a user-chosen name such as "paid" or "ZAR" also appears in
-- the body as a status or currency, which must survive. A body that is not a
-- JSON object (a bad-signature delivery, never linked to a payment) is left.
create or replace function app_private.erase_revio_client(p_body text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_body jsonb;
  v_key text;
begin
  if not pg_input_is_valid(p_body, 'jsonb') then
    return p_body;
  end if;
  v_body := p_body::jsonb;
  if jsonb_typeof(v_body) <> 'object' or jsonb_typeof(v_body->'client') <> 'object' then
    return p_body;
  end if;
  for v_key in select k from jsonb_object_keys(v_body->'client') k where k <> 'country' loop
    if jsonb_typeof(v_body->'client'->v_key) <> 'null' then
      v_body := jsonb_set(v_body, array['client', v_key], '"[erased]"');
    end if;
  end loop;
  return v_body::text;
end;
$$;

create or replace function app_private.erase_user(p_user_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  select u.* into v_user from app_public.users u where u.id = p_user_id for update;
  if v_user.id is null then
    raise exception 'No such user' using errcode = 'PW308'; -- USER_NOT_FOUND
  end if;
  if v_user.erased_at is not null then
    raise exception 'This account was already erased' using errcode = 'PW312'; -- USER_ERASED
  end if;

  -- Stored Revio deliveries quote the person in their `client` object.
  update app_private.revio_deliveries d
     set body = app_private.erase_revio_client(d.body)
   where d.deposit_id in (select id from app_public.deposits where user_id = p_user_id)
      or d.withdrawal_id in (select id from app_public.withdrawals where user_id = p_user_id);

  delete from app_private.login_attempts a where a.email = v_user.email;
  delete from app_private.user_secrets s where s.user_id = p_user_id;
  update app_private.sessions s set revoked_at = coalesce(s.revoked_at, now()), revoked_reason = coalesce(s.revoked_reason, 'admin')
   where s.user_id = p_user_id;
  delete from app_private.refresh_tokens t using app_private.sessions s where t.session_id = s.id and s.user_id = p_user_id;

  delete from app_private.bank_account_numbers n using app_public.bank_accounts b
   where n.bank_account_id = b.id and b.user_id = p_user_id;
  update app_public.bank_accounts b
     set account_holder = 'Erased', bank_name = 'Erased', branch_code = '000000', account_number_last4 = '0000'
   where b.user_id = p_user_id;
  update app_public.deposits d set checkout_url = null where d.user_id = p_user_id;

  update ledger.accounts a set frozen = true where a.kind = 'user_wallet' and a.owner_id = p_user_id and not a.frozen;

  update app_public.users u
     set email = 'erased-' || encode(gen_random_bytes(12), 'hex') || '@erased.invalid',
         full_name = 'Erased user',
         role = 'user',
         erased_at = now()
   where u.id = p_user_id;
end;
$$;

-- The GraphQL mutation deleteMyAccount.
create or replace function app_public.delete_my_account()
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
begin
  if v_caller is null then
    raise exception 'Sign in to delete your account' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  -- Lock the wallets so no money arrives between the check and the erasure.
  perform from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = v_caller order by a.id for update;
  if exists (select from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = v_caller and (a.balance <> 0 or a.held <> 0))
     or exists (select from app_public.deposits d where d.user_id = v_caller and d.status in ('pending', 'awaiting_payment'))
     or exists (select from app_public.withdrawals w where w.user_id = v_caller and w.status in ('requested', 'submitted')) then
    raise exception 'Withdraw or spend your whole balance, and wait for open deposits and withdrawals, before deleting your account'
      using errcode = 'PW311'; -- ACCOUNT_NOT_EMPTY
  end if;
  perform app_private.erase_user(v_caller);
  return true;
end;
$$;
comment on function app_public.delete_my_account() is
  'Erase your personal data (GDPR) and end every session. Only when all your wallets are at zero and nothing is in flight; the ledger keeps its entries.';

create or replace function app_public.admin_erase_user(user_id uuid, reason text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_erase_user.reason);
  v_balances jsonb;
begin
  if admin_erase_user.user_id = v_admin then
    raise exception 'Admins cannot erase themselves here; use deleteMyAccount' using errcode = 'PW309'; -- ADMIN_SELF_ACTION
  end if;
  -- Erasing sets the role to user: removing an admin goes through a role-change request first.
  if exists (select from app_public.users u where u.id = admin_erase_user.user_id and u.role = 'admin') then
    raise exception 'Remove their admin role first (a role change another admin approves)' using errcode = 'PW405'; -- ADMIN_ERASE_ADMIN
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('wallet_id', a.id, 'currency', a.currency, 'balance', a.balance, 'held', a.held)), '[]')
    into v_balances
    from ledger.accounts a where a.kind = 'user_wallet' and a.owner_id = admin_erase_user.user_id;
  perform app_private.erase_user(admin_erase_user.user_id);
  perform app_private.log_admin_action('erase_user', 'user', admin_erase_user.user_id::text,
    jsonb_build_object('wallets', v_balances, 'reason', v_reason));
  return true;
end;
$$;
comment on function app_public.admin_erase_user(uuid, text) is
  'Admins only: erase a person''s personal data even with money left (their wallets stay frozen with it). Logged.';

revoke all on function app_private.erase_user(uuid) from public;
revoke all on function app_private.erase_revio_client(text) from public;
revoke all on function app_public.delete_my_account() from public;
revoke all on function app_public.admin_erase_user(uuid, text) from public;
grant execute on function app_public.delete_my_account() to app_user;
grant execute on function app_public.admin_erase_user(uuid, text) to app_admin;
--! EndIncluded privacy/erasure.sql
--! Included payments/revio_events.sql
-- What Revio tells us, from any source, goes through receive_revio_event:
-- webhooks (the /webhooks/revio route, after checking X-Signature), the
-- worker (the objects Revio returns when it creates or executes them) and
-- reconciliation (objects read back from Revio). It records every delivery,
-- deduplicates events, and applies guarded transitions to the deposit or
-- withdrawal, so replays, duplicates and out-of-order deliveries change
-- nothing that was already decided.

-- A whole number of minor units from a JSON number or digit string, else null.
create or replace function app_private.jsonb_cents(p_value jsonb)
returns bigint
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when jsonb_typeof(p_value) in ('number', 'string') and (p_value #>> '{}') ~ '^[0-9]{1,18}$'
              then (p_value #>> '{}')::bigint end;
$$;

-- The reason Revio gave for the last failed attempt, if any.
create or replace function app_private.revio_attempt_error(p_body jsonb)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select left(p_body #>> '{transaction_data,attempts,-1,error,message}', 500);
$$;

-- Flags a deposit or withdrawal for a person to look at (never silently stuck).
create or replace function app_private.flag_payment(p_kind text, p_id uuid, p_reason text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_kind = 'deposit' then
    update app_public.deposits set needs_attention = true, attention_reason = left(p_reason, 1000) where id = p_id;
  elsif p_kind = 'withdrawal' then
    update app_public.withdrawals set needs_attention = true, attention_reason = left(p_reason, 1000) where id = p_id;
  else
    raise exception 'flag_payment: unknown kind %', p_kind;
  end if;
end;
$$;

-- The deposit a purchase belongs to, locked: by purchase id, else by our
-- reference (the deposit id) when the purchase id was never stored.
create or replace function app_private.lock_deposit_for_purchase(p_body jsonb)
returns app_public.deposits
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_reference text := p_body->>'reference';
begin
  select d.* into v_deposit from app_public.deposits d where d.revio_purchase_id = p_body->>'id' for update;
  if v_deposit.id is null and v_reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select d.* into v_deposit from app_public.deposits d where d.id = v_reference::uuid for update;
  end if;
  return v_deposit;
end;
$$;

-- Applies a purchase snapshot to its deposit. Credits the wallet (Revio
-- clearing → wallet) exactly once, only when amount and currency match.
create or replace function app_private.apply_purchase_event(
  p_body jsonb,
  out outcome text,
  out detail text,
  out deposit_id uuid
)
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_purchase_id text := p_body->>'id';
  v_status text := p_body->>'status';
  v_deposit app_public.deposits := app_private.lock_deposit_for_purchase(p_body);
  v_amount bigint := coalesce(app_private.jsonb_cents(p_body #> '{payment,amount}'), app_private.jsonb_cents(p_body #> '{purchase,total}'));
  v_currency text := coalesce(p_body #>> '{payment,currency}', p_body #>> '{purchase,currency}');
  v_entry uuid;
begin
  if v_deposit.id is null then
    outcome := 'unmatched';
    detail := 'No deposit has this purchase id or reference';
    return;
  end if;
  deposit_id := v_deposit.id;

  if v_deposit.revio_purchase_id is distinct from v_purchase_id then
    if v_deposit.revio_purchase_id is not null then
      detail := format('Revio purchase %s (%s) also names this deposit, which is linked to purchase %s; nothing applied',
                       v_purchase_id, v_status, v_deposit.revio_purchase_id);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
      return;
    end if;
    -- First sight of its purchase: the create call's answer was lost or is late.
    update app_public.deposits d set revio_purchase_id = v_purchase_id, checkout_url = coalesce(d.checkout_url, p_body->>'checkout_url')
     where d.id = v_deposit.id returning d.* into v_deposit;
  end if;

  if v_status in ('paid', 'cleared', 'settled') then
    if v_deposit.status = 'paid' then
      outcome := 'ignored';
      detail := 'Already credited';
    elsif v_deposit.status not in ('pending', 'awaiting_payment') then
      detail := format('Revio reports the purchase %s but the deposit is %s: money may be at Revio without a credit', v_status, v_deposit.status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    elsif v_amount is distinct from v_deposit.amount or v_currency is distinct from v_deposit.currency then
      detail := format('Revio reports %s paid but the deposit is for %s; not credited',
                       coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'an unknown amount'),
                       app_private.format_money(v_deposit.amount, v_deposit.currency));
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      update app_public.deposits d set revio_status = v_status where d.id = v_deposit.id;
      outcome := 'review';
    else
      v_entry := ledger.move('deposit', ledger.system_account('revio_clearing', v_deposit.currency), v_deposit.wallet_id,
                             v_deposit.amount, 'Deposit via Revio',
                             jsonb_build_object('deposit_id', v_deposit.id, 'revio_purchase_id', v_purchase_id));
      update app_public.deposits d
         set status = 'paid', credit_entry_id = v_entry, paid_at = now(), revio_status = v_status, failure_reason = null
       where d.id = v_deposit.id;
      outcome := 'applied';
      detail := 'Credited';
    end if;

  elsif v_status in ('cancelled', 'expired', 'blocked') then
    if v_deposit.status in ('pending', 'awaiting_payment') then
      update app_public.deposits d
         set status = case v_status when 'cancelled' then 'cancelled' when 'expired' then 'expired' else 'failed' end::app_public.deposit_status,
             failure_reason = case v_status when 'cancelled' then 'The payment was cancelled.'
                                            when 'expired' then 'The checkout expired before it was paid.'
                                            else 'The payment was blocked by Revio''s fraud checks.' end,
             revio_status = v_status
       where d.id = v_deposit.id;
      outcome := 'applied';
    else
      outcome := 'ignored';
      detail := format('The deposit is already %s', v_deposit.status);
    end if;

  elsif v_status in ('refunded', 'pending_refund', 'chargeback') then
    if v_deposit.status = 'paid' then
      detail := format('Revio reports the purchase %s after the wallet was credited; reverse the credit if confirmed', v_status);
      perform app_private.flag_payment('deposit', v_deposit.id, detail);
      outcome := 'review';
    else
      outcome := 'ignored';
      detail := format('The deposit is %s', v_deposit.status);
    end if;

  -- Still payable (created, sent, viewed, error: an attempt failed and the
  -- person may try again, overdue, pending_*, hold …).
  elsif v_deposit.status in ('pending', 'awaiting_payment') then
    update app_public.deposits d
       set status = 'awaiting_payment',
           checkout_url = coalesce(d.checkout_url, p_body->>'checkout_url'),
           revio_status = v_status,
           failure_reason = case when v_status = 'error' then coalesce(app_private.revio_attempt_error(p_body), 'The payment attempt failed.')
                                 else d.failure_reason end
     where d.id = v_deposit.id;
    outcome := 'applied';
  else
    outcome := 'ignored';
    detail := format('The deposit is already %s', v_deposit.status);
  end if;
end;
$$;

-- The withdrawal a payout belongs to, locked (as lock_deposit_for_purchase).
create or replace function app_private.lock_withdrawal_for_payout(p_body jsonb)
returns app_public.withdrawals
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_withdrawal app_public.withdrawals;
  v_reference text := p_body->>'reference';
begin
  select w.* into v_withdrawal from app_public.withdrawals w where w.revio_payout_id = p_body->>'id' for update;
  if v_withdrawal.id is null and v_reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select w.* into v_withdrawal from app_public.withdrawals w where w.id = v_reference::uuid for update;
  end if;
  return v_withdrawal;
end;
$$;

-- Releases a withdrawal's hold and marks it failed with a reason the person
-- sees. Only from requested or submitted; returns whether it did anything.
create or replace function app_private.fail_withdrawal(p_withdrawal_id uuid, p_reason text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_withdrawal app_public.withdrawals;
begin
  select w.* into v_withdrawal from app_public.withdrawals w where w.id = p_withdrawal_id for update;
  if v_withdrawal.id is null or v_withdrawal.status not in ('requested', 'submitted') then
    return false;
  end if;
  if exists (select from ledger.holds h where h.id = v_withdrawal.hold_id and h.status = 'placed') then
    perform ledger.release_hold(v_withdrawal.hold_id);
  end if;
  update app_public.withdrawals
     set status = 'failed', failure_reason = left(p_reason, 500), closed_at = now()
   where id = p_withdrawal_id;
  return true;
end;
$$;

-- Applies a payout snapshot to its withdrawal. Success captures the hold
-- (wallet → withdrawals in flight) and pays it out (in flight → Revio
-- clearing); failure releases the hold.
create or replace function app_private.apply_payout_event(
  p_body jsonb,
  out outcome text,
  out detail text,
  out withdrawal_id uuid
)
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_payout_id text := p_body->>'id';
  v_status text := p_body->>'status';
  v_withdrawal app_public.withdrawals := app_private.lock_withdrawal_for_payout(p_body);
  v_amount bigint := app_private.jsonb_cents(p_body #> '{payment,amount}');
  v_currency text := p_body #>> '{payment,currency}';
  v_in_flight uuid;
  v_capture uuid;
  v_payout uuid;
begin
  if v_withdrawal.id is null then
    outcome := 'unmatched';
    detail := 'No withdrawal has this payout id or reference';
    return;
  end if;
  withdrawal_id := v_withdrawal.id;

  if v_withdrawal.revio_payout_id is distinct from v_payout_id then
    if v_withdrawal.revio_payout_id is not null then
      detail := format('Revio payout %s (%s) also names this withdrawal, which is linked to payout %s; nothing applied',
                       v_payout_id, v_status, v_withdrawal.revio_payout_id);
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
      return;
    end if;
    update app_public.withdrawals w set revio_payout_id = v_payout_id where w.id = v_withdrawal.id
    returning w.* into v_withdrawal;
  end if;

  if v_status = 'success' then
    if v_withdrawal.status = 'paid' then
      outcome := 'ignored';
      detail := 'Already paid out';
    elsif v_withdrawal.status not in ('requested', 'submitted')
          or not exists (select from ledger.holds h where h.id = v_withdrawal.hold_id and h.status = 'placed') then
      detail := format('Revio reports the payout succeeded but the withdrawal is %s and its hold is closed: the money left twice or the failure was wrong',
                       v_withdrawal.status);
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    elsif v_amount is distinct from v_withdrawal.amount or v_currency is distinct from v_withdrawal.currency then
      detail := format('Revio paid out %s but the withdrawal is for %s; the hold stays until this is resolved',
                       coalesce(app_private.format_money(v_amount, coalesce(v_currency, '???')), 'an unknown amount'),
                       app_private.format_money(v_withdrawal.amount, v_withdrawal.currency));
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    else
      v_in_flight := ledger.system_account('withdrawals_in_flight', v_withdrawal.currency);
      v_capture := ledger.capture_hold(v_withdrawal.hold_id, v_in_flight, 'withdrawal', null, 'Withdrawal to bank',
                                       jsonb_build_object('withdrawal_id', v_withdrawal.id));
      v_payout := ledger.move('payout', v_in_flight, ledger.system_account('revio_clearing', v_withdrawal.currency),
                              v_withdrawal.amount, 'Revio payout',
                              jsonb_build_object('withdrawal_id', v_withdrawal.id, 'revio_payout_id', v_payout_id));
      update app_public.withdrawals w
         set status = 'paid', capture_entry_id = v_capture, payout_entry_id = v_payout, revio_status = v_status,
             submitted_at = coalesce(w.submitted_at, now()), closed_at = now()
       where w.id = v_withdrawal.id;
      outcome := 'applied';
      detail := 'Paid out';
    end if;

  elsif v_status = 'error' then
    if app_private.fail_withdrawal(v_withdrawal.id, coalesce(app_private.revio_attempt_error(p_body), 'The bank payout failed.')) then
      update app_public.withdrawals w set revio_status = v_status where w.id = v_withdrawal.id;
      outcome := 'applied';
    elsif v_withdrawal.status = 'paid' then
      detail := 'Revio reports the payout failed after it succeeded; check with Revio and reverse if confirmed';
      perform app_private.flag_payment('withdrawal', v_withdrawal.id, detail);
      outcome := 'review';
    else
      outcome := 'ignored';
      detail := format('The withdrawal is already %s', v_withdrawal.status);
    end if;

  -- initialized (created) or pending (executed): the payout is at Revio.
  elsif v_withdrawal.status = 'requested' then
    update app_public.withdrawals w set status = 'submitted', submitted_at = now(), revio_status = v_status
     where w.id = v_withdrawal.id;
    outcome := 'applied';
  elsif v_withdrawal.status = 'submitted' and v_withdrawal.revio_status is distinct from v_status and v_status = 'pending' then
    update app_public.withdrawals w set revio_status = v_status where w.id = v_withdrawal.id;
    outcome := 'applied';
  else
    outcome := 'ignored';
    detail := format('The withdrawal is already %s', v_withdrawal.status);
  end if;
end;
$$;

-- The longest prefix of p_text that is at most p_bytes bytes of UTF-8 (never
-- cutting a character in two).
create or replace function app_private.utf8_prefix(p_text text, p_bytes int)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v text := left(p_text, p_bytes);
begin
  while octet_length(v) > p_bytes loop
    v := left(v, length(v) - greatest(1, (octet_length(v) - p_bytes) / 4));
  end loop;
  return v;
end;
$$;

-- The one entry point: records the delivery, deduplicates the event on
-- (object id, event type, status, updated_on), applies it, and returns the
-- outcome: applied | duplicate | ignored | unmatched | review | invalid |
-- bad_signature. A body whose signature failed is stored and nothing else:
-- it is not even parsed.
create or replace function app_private.receive_revio_event(
  p_body text,
  p_signature_ok boolean,
  p_received_at timestamptz,
  p_headers jsonb,
  p_source text default 'webhook'
)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_body jsonb;
  v_type text;
  v_id text;
  v_event text;
  v_status text;
  v_updated bigint;
  v_outcome text;
  v_detail text;
  v_deposit_id uuid;
  v_withdrawal_id uuid;
begin
  if p_signature_ok is not true then
    v_outcome := 'bad_signature';
    v_detail := 'X-Signature missing or not made by Revio''s key; nothing applied';
  else
    if pg_input_is_valid(p_body, 'jsonb') then
      v_body := p_body::jsonb;
    end if;
    if jsonb_typeof(v_body) = 'object' then
      v_type := v_body->>'type';
      v_id := v_body->>'id';
      v_event := v_body->>'event_type';
      v_status := v_body->>'status';
      v_updated := app_private.jsonb_cents(v_body->'updated_on');
    end if;
    if v_id is null or v_event is null or v_status is null or v_updated is null or v_type is null
       or length(v_id) > 100 or length(v_event) > 100 or length(v_status) > 100 or length(v_type) > 100 then
      v_outcome := 'invalid';
      v_detail := 'Not a Revio object with id, type, event_type, status and updated_on';
    else
      insert into app_private.revio_events (object_id, event_type, status, updated_on, received_at)
      values (v_id, v_event, v_status, v_updated, p_received_at)
      on conflict do nothing;
      if not found then
        v_outcome := 'duplicate';
      elsif v_type = 'purchase' then
        select r.outcome, r.detail, r.deposit_id into v_outcome, v_detail, v_deposit_id from app_private.apply_purchase_event(v_body) r;
      elsif v_type = 'payout' then
        select r.outcome, r.detail, r.withdrawal_id into v_outcome, v_detail, v_withdrawal_id from app_private.apply_payout_event(v_body) r;
      else
        v_outcome := 'unmatched';
        v_detail := format('Events about a %s are not handled', v_type);
      end if;
    end if;
  end if;

  -- A bad-signature body is anyone's bytes: keep its SHA-256, size and first
  -- 1 kB only, so the route cannot be used to fill the disk (issue 9 §3).
  insert into app_private.revio_deliveries (received_at, source, signature_ok, headers, body, body_sha256, body_bytes,
                                            object_type, object_id, event_type, status, updated_on, outcome, detail,
                                            deposit_id, withdrawal_id)
  values (coalesce(p_received_at, now()), coalesce(p_source, 'webhook'), coalesce(p_signature_ok, false), coalesce(p_headers, '{}'),
          case when p_signature_ok is true then coalesce(p_body, '') else app_private.utf8_prefix(coalesce(p_body, ''), 1024) end,
          encode(sha256(convert_to(coalesce(p_body, ''), 'UTF8')), 'hex'), octet_length(coalesce(p_body, '')),
          v_type, v_id, v_event, v_status, v_updated, v_outcome, v_detail, v_deposit_id, v_withdrawal_id);
  return v_outcome;
end;
$$;
comment on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) is
  'Records a Revio delivery (webhook, worker or reconciliation), deduplicates it, applies the guarded transition; returns the outcome.';

revoke all on function app_private.jsonb_cents(jsonb) from public;
revoke all on function app_private.utf8_prefix(text, int) from public;
revoke all on function app_private.revio_attempt_error(jsonb) from public;
revoke all on function app_private.flag_payment(text, uuid, text) from public;
revoke all on function app_private.lock_deposit_for_purchase(jsonb) from public;
revoke all on function app_private.apply_purchase_event(jsonb) from public;
revoke all on function app_private.lock_withdrawal_for_payout(jsonb) from public;
revoke all on function app_private.fail_withdrawal(uuid, text) from public;
revoke all on function app_private.apply_payout_event(jsonb) from public;
revoke all on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) from public;
-- The webhook route calls it as the API's login role, without switching role.
grant execute on function app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text) to authenticator;
--! EndIncluded payments/revio_events.sql
--! Included payments/retention.sql
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
--! EndIncluded payments/retention.sql
--! Included audit/payments.sql
-- Read-only views of the payment flows for DBAs and auditors (app_auditor).
-- docs/runbook-payments.md says what each should show and what to do.

-- Every Revio delivery with its outcome, newest first when ordered by id.
create or replace view audit.revio_webhook_log as
  select d.id, d.received_at, d.source, d.signature_ok, d.object_type, d.object_id, d.event_type, d.status,
         d.updated_on, d.outcome, d.detail, d.deposit_id, d.withdrawal_id, d.headers, d.body,
         -- The whole body's SHA-256 and size: a bad-signature body keeps only its first 1 kB.
         d.body_sha256, d.body_bytes
    from app_private.revio_deliveries d;

-- Events about objects that are neither our deposits nor our withdrawals.
create or replace view audit.unmatched_revio_events as
  select d.id, d.received_at, d.source, d.object_type, d.object_id, d.event_type, d.status, d.detail, d.body
    from app_private.revio_deliveries d
   where d.outcome = 'unmatched';

-- Deposits and withdrawals a person must look at: retries exhausted, amount
-- mismatch, payment after closing, a second Revio object, …
create or replace view audit.payments_needing_attention as
  select 'deposit' as kind, d.id, u.email as owner_email, d.status::text, d.amount, d.currency, d.revio_purchase_id as revio_id,
         d.attention_reason, d.created_at, d.updated_at
    from app_public.deposits d join app_public.users u on u.id = d.user_id
   where d.needs_attention
  union all
  select 'withdrawal', w.id, u.email, w.status::text, w.amount, w.currency, w.revio_payout_id,
         w.attention_reason, w.created_at, w.updated_at
    from app_public.withdrawals w join app_public.users u on u.id = w.user_id
   where w.needs_attention;

-- Jobs that used up their attempts (graphile-worker keeps them): the dead
-- letters, with the last error and the deposit or withdrawal they were for.
-- A function, because graphile_worker's schema is installed by the worker
-- after the migrations (src/worker/runner.ts).
create or replace function audit.dead_jobs()
returns table (job_id bigint, task text, job_key text, attempts int, max_attempts int, last_error text,
               failed_at timestamptz, deposit_id uuid, withdrawal_id uuid, payment_status text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regclass('graphile_worker.jobs') is null then
    return;
  end if;
  return query
    select j.id, j.task_identifier, j.key, j.attempts::int, j.max_attempts::int, j.last_error, j.updated_at,
           d.id, w.id, coalesce(d.status::text, w.status::text)
      from graphile_worker.jobs j
      left join app_public.deposits d on j.key like 'deposit:%' and d.id::text = substr(j.key, 9)
      left join app_public.withdrawals w on j.key like 'withdrawal:%' and w.id::text = substr(j.key, 12)
     where j.attempts >= j.max_attempts and j.locked_at is null
     order by j.updated_at desc;
end;
$$;
create or replace view audit.dead_jobs as select * from audit.dead_jobs();

-- Differences between Revio and the ledger found by the daily reconciliation
-- (revio.reconcile_daily) and not yet marked resolved.
create or replace view audit.revio_discrepancies as
  select r.id, r.found_at, r.kind, r.object_type, r.object_id, r.deposit_id, r.withdrawal_id, r.currency,
         r.ledger_amount, r.revio_amount, r.detail, r.run_id
    from app_private.revio_discrepancies r
   where r.resolved_at is null;

revoke all on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
              audit.dead_jobs, audit.revio_discrepancies from public;
grant select on audit.revio_webhook_log, audit.unmatched_revio_events, audit.payments_needing_attention,
                audit.dead_jobs, audit.revio_discrepancies to app_auditor;
revoke all on function audit.dead_jobs() from public;
grant execute on function audit.dead_jobs() to app_auditor;
--! EndIncluded audit/payments.sql
--! Included audit/ledger.sql
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
--! EndIncluded audit/ledger.sql
--! Included worker/grants.sql
-- The job worker's privileges, all in this one file (issue 9 §5).
--
-- The worker logs in as its own role, app_worker (created by
-- src/db/bootstrap.ts; docs/runbook.md), never as the owner: the owner is for
-- migrations only. It may EXECUTE exactly the functions its tasks call, each
-- SECURITY DEFINER with a pinned search_path, and use graphile-worker's schema
-- (app_private.grant_worker_queue below). Nothing else: no table of ours.
--
-- TASK AUTHORS: when a task (src/worker/tasks, or a domain's src/<domain>/tasks.ts) calls a new SQL function, add
-- it to the list below (and keep this file --!include'd LAST in current.sql:
-- `create or replace function` resets SECURITY DEFINER, so a later re-include
-- of the function's own file must be followed by this one).
-- tests/worker-privileges.test.ts fails if a task's function is missing here.

grant usage on schema app_private, ledger to app_worker;

do $$
declare
  v_fn regprocedure;
begin
  foreach v_fn in array array[
    -- ledger_expire_holds
    'ledger.expire_holds(int)',
    -- ledger_purge_idempotency
    'app_private.purge_idempotency_records(interval, int)',
    -- revio.purge_deliveries
    'app_private.purge_revio_deliveries(int, int, int)',
    -- revio.create_purchase
    'app_private.deposit_for_purchase(uuid)',
    'app_private.fail_deposit(uuid, text)',
    'app_private.mark_revio_requested(text, uuid)',
    -- revio.create_payout
    'app_private.withdrawal_for_payout(uuid)',
    'app_private.fail_withdrawal(uuid, text)',
    -- every Revio job (src/worker/tasks/revio-job.ts)
    'app_private.flag_payment(text, uuid, text)',
    'app_private.receive_revio_event(text, boolean, timestamptz, jsonb, text)',
    -- revio.reconcile_pending / revio.reconcile_daily
    'app_private.revio_objects_to_reconcile(interval, int)',
    'app_private.reconcile_revio_object(text, uuid, text)',
    'app_private.revio_objects_for_daily_check(timestamptz)',
    'app_private.record_revio_reconciliation(jsonb)',
    -- send_email (src/worker/tasks/send-email.ts)
    'app_private.email_to_send(bigint)',
    'app_private.mark_email_sent(bigint)',
    -- voting_close_events / voting_snapshot_leaderboards (src/voting/tasks.ts)
    'app_private.close_due_events()',
    'app_private.snapshot_leaderboards()'
  ]::regprocedure[] loop
    -- Runs as the owner, whatever the caller; each of these pins search_path
    -- in its own file (tests/admin.test.ts-style check in the worker test).
    execute format('alter function %s security definer', v_fn);
    execute format('grant execute on function %s to app_worker', v_fn);
  end loop;
end
$$;

-- graphile-worker's own schema: the worker takes, completes and fails jobs,
-- and keeps cron state there. Installed by graphile-worker's migrations as the
-- owner (npm run migrate, installWorkerSchema), which calls this afterwards;
-- called here too for a database where the schema already exists.
-- graphile-worker turns row-level security on for its private tables (no
-- policy: only their owner may touch them), so app_worker also gets one
-- policy per such table that lets it see and change every row.
create or replace function app_private.grant_worker_queue()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_table regclass;
begin
  if to_regnamespace('graphile_worker') is null then
    return;
  end if;
  grant usage on schema graphile_worker to app_worker;
  grant select, insert, update, delete on all tables in schema graphile_worker to app_worker;
  grant usage, select on all sequences in schema graphile_worker to app_worker;
  grant execute on all functions in schema graphile_worker to app_worker;
  for v_table in
    select c.oid::regclass from pg_class c
     where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind = 'r' and c.relrowsecurity
       and not exists (select from pg_policy p where p.polrelid = c.oid and p.polname = 'app_worker_queue')
  loop
    execute format('create policy app_worker_queue on %s for all to app_worker using (true) with check (true)', v_table);
  end loop;
end;
$$;
revoke all on function app_private.grant_worker_queue() from public;
select app_private.grant_worker_queue();
--! EndIncluded worker/grants.sql

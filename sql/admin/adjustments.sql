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

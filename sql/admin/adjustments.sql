-- Manual balance adjustments, maker-checker: one admin requests, a different
-- admin approves (which posts the entry through the ledger's functions,
-- between the wallet and the currency's system adjustments account) or
-- rejects. Both decisions are recorded on the row and in the admin log.

alter table app_public.balance_adjustments enable row level security;
drop policy if exists select_for_admins on app_public.balance_adjustments;
create policy select_for_admins on app_public.balance_adjustments
  for select to app_admin
  using ((select app_private.current_admin_id()) is not null);

create or replace function app_public.admin_request_adjustment(wallet_id uuid, amount bigint, reason text)
returns app_public.balance_adjustments
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_reason text := app_private.assert_reason(admin_request_adjustment.reason);
  v_currency char(3);
  v_row app_public.balance_adjustments;
begin
  if admin_request_adjustment.amount is null or admin_request_adjustment.amount = 0
     or abs(admin_request_adjustment.amount) > 1000000000000000 then
    raise exception 'The amount must be a non-zero whole number of minor units (negative debits the wallet)'
      using errcode = 'PW103'; -- AMOUNT_INVALID
  end if;
  select a.currency into v_currency from ledger.accounts a
   where a.id = admin_request_adjustment.wallet_id and a.kind = 'user_wallet';
  if v_currency is null then
    raise exception 'No such wallet' using errcode = 'PW106'; -- WALLET_NOT_FOUND
  end if;
  insert into app_public.balance_adjustments (wallet_id, amount, currency, reason, requested_by)
  values (admin_request_adjustment.wallet_id, admin_request_adjustment.amount, v_currency, v_reason, v_admin)
  returning * into v_row;
  perform app_private.log_admin_action('request_adjustment', 'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency, 'reason', v_reason));
  return v_row;
end;
$$;
comment on function app_public.admin_request_adjustment(uuid, bigint, text) is
  'Admins only: ask for a manual balance adjustment (positive credits, negative debits the wallet). Another admin must approve it. Logged.';

create or replace function app_public.admin_decide_adjustment(adjustment_id uuid, approve boolean, note text)
returns app_public.balance_adjustments
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_decide_adjustment.note);
  v_row app_public.balance_adjustments;
  v_owner uuid;
  v_system uuid;
  v_entry uuid;
begin
  select b.* into v_row from app_public.balance_adjustments b where b.id = admin_decide_adjustment.adjustment_id for update;
  if v_row.id is null then
    raise exception 'No such balance adjustment' using errcode = 'PW302'; -- ADJUSTMENT_NOT_FOUND
  end if;
  if v_row.status <> 'pending' then
    raise exception 'This adjustment was already %', v_row.status using errcode = 'PW303'; -- ADJUSTMENT_NOT_PENDING
  end if;

  if admin_decide_adjustment.approve then
    select a.owner_id into v_owner from ledger.accounts a where a.id = v_row.wallet_id;
    if v_row.requested_by = v_admin then
      raise exception 'Another admin must approve an adjustment you requested' using errcode = 'PW301'; -- ADMIN_SELF_APPROVAL
    end if;
    if v_owner = v_admin then
      raise exception 'Another admin must approve an adjustment to your own wallet' using errcode = 'PW301'; -- ADMIN_SELF_APPROVAL
    end if;
    v_system := ledger.system_account('adjustments', v_row.currency);
    v_entry := case when v_row.amount > 0
      then ledger.move('adjustment', v_system, v_row.wallet_id, v_row.amount, left('Adjustment: ' || v_row.reason, 140),
                       jsonb_build_object('adjustment_id', v_row.id, 'requested_by', v_row.requested_by, 'approved_by', v_admin))
      else ledger.move('adjustment', v_row.wallet_id, v_system, -v_row.amount, left('Adjustment: ' || v_row.reason, 140),
                       jsonb_build_object('adjustment_id', v_row.id, 'requested_by', v_row.requested_by, 'approved_by', v_admin))
    end;
    update app_public.balance_adjustments b
       set status = 'approved', decided_by = v_admin, decided_at = now(), decision_note = v_note, entry_id = v_entry
     where b.id = v_row.id
    returning * into v_row;
  elsif not admin_decide_adjustment.approve then
    update app_public.balance_adjustments b
       set status = 'rejected', decided_by = v_admin, decided_at = now(), decision_note = v_note
     where b.id = v_row.id
    returning * into v_row;
  else
    raise exception 'Say whether to approve' using errcode = 'PW304'; -- REASON_REQUIRED
  end if;
  perform app_private.log_admin_action(case when v_row.status = 'approved' then 'approve_adjustment' else 'reject_adjustment' end,
    'balance_adjustment', v_row.id::text,
    jsonb_build_object('wallet_id', v_row.wallet_id, 'amount', v_row.amount, 'currency', v_row.currency,
                       'requested_by', v_row.requested_by, 'entry_id', v_row.entry_id, 'note', v_note));
  return v_row;
end;
$$;
comment on function app_public.admin_decide_adjustment(uuid, boolean, text) is
  'Admins only: approve (posts the entry) or reject a pending adjustment. The requester cannot approve their own request, nor anyone an adjustment to their own wallet. Logged.';

comment on table app_public.balance_adjustments is
  E'@behavior -insert -update -delete\nAdmins only: manual balance adjustments, requested by one admin and approved or rejected by another.';
comment on column app_public.balance_adjustments.amount is E'@behavior -filterBy -orderBy\nMinor units: positive credits the wallet, negative debits it.';
comment on constraint balance_adjustments_entry_id_key on app_public.balance_adjustments is '@behavior -single';

revoke all on app_public.balance_adjustments from public, app_anonymous, app_user, app_auditor, authenticator;
grant select on app_public.balance_adjustments to app_admin;
revoke all on function app_public.admin_request_adjustment(uuid, bigint, text) from public;
revoke all on function app_public.admin_decide_adjustment(uuid, boolean, text) from public;
grant execute on function app_public.admin_request_adjustment(uuid, bigint, text) to app_admin;
grant execute on function app_public.admin_decide_adjustment(uuid, boolean, text) to app_admin;

-- Chargebacks and refunds Revio makes on its own, after the wallet was
-- credited (payment.charged_back, or a payment.refunded that matches none of
-- our refunds). The money has already left Revio clearing, so the wallet is
-- debited: what it has available (after releasing the deposit's own clearing
-- hold), and the rest — never a silent negative balance — is booked to the
-- chargeback_receivable account and shown to admins (admin_reversals,
-- audit.reversals, pgwallet_reversals_unreviewed). Withdrawals from the
-- wallet stop (WITHDRAWALS_BLOCKED) until an admin reviews every open reversal.

create or replace function app_private.apply_reversal(
  p_deposit_id uuid,
  p_kind text,
  p_payment_id text,
  p_amount bigint
)
returns app_public.reversals
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_deposit app_public.deposits;
  v_reversal app_public.reversals;
  v_clearing bigint;
  v_available bigint;
  v_debit bigint;
  v_receivable bigint;
  v_legs ledger.leg[];
  v_entry uuid;
begin
  select d.* into v_deposit from app_public.deposits d where d.id = p_deposit_id for update;
  -- The deposit's own clearing hold is money that is going back: release it
  -- (re-placing what is left of it) so the debit can use it.
  v_clearing := app_private.set_clearing_amount(p_deposit_id, 0);
  perform app_private.set_clearing_amount_after_release(p_deposit_id, v_clearing - p_amount);

  select case when a.frozen then 0 else greatest(a.balance - a.held, 0) end into v_available
    from ledger.accounts a where a.id = v_deposit.wallet_id for update;
  v_debit := least(v_available, p_amount);
  v_receivable := p_amount - v_debit;
  v_legs := array[row(ledger.system_account('revio_clearing', v_deposit.currency), p_amount)]::ledger.leg[];
  if v_debit > 0 then
    v_legs := v_legs || row(v_deposit.wallet_id, -v_debit)::ledger.leg;
  end if;
  if v_receivable > 0 then
    v_legs := v_legs || row(ledger.system_account('chargeback_receivable', v_deposit.currency), -v_receivable)::ledger.leg;
  end if;
  v_entry := ledger.post_entry(case p_kind when 'chargeback' then 'chargeback' else 'reversal' end::ledger.entry_kind, v_legs,
                               case p_kind when 'chargeback' then 'Chargeback of deposit ' else 'Revio refunded deposit ' end || p_deposit_id,
                               jsonb_build_object('deposit_id', p_deposit_id, 'revio_payment_id', p_payment_id,
                                                  'debited', v_debit, 'receivable', v_receivable));
  insert into app_public.reversals (deposit_id, user_id, wallet_id, kind, revio_payment_id, amount, currency,
                                    debited_amount, receivable_amount, entry_id)
  values (p_deposit_id, v_deposit.user_id, v_deposit.wallet_id, p_kind, p_payment_id, p_amount, v_deposit.currency,
          v_debit, v_receivable, v_entry)
  returning * into v_reversal;
  update app_public.deposits set reversed_amount = reversed_amount + p_amount where id = p_deposit_id;
  perform app_private.flag_payment('deposit', p_deposit_id,
    format('Revio %s %s after the credit: %s debited from the wallet, %s owed (chargeback receivable); withdrawals are blocked until an admin reviews it',
           case p_kind when 'chargeback' then 'charged back' else 'refunded' end,
           app_private.format_money(p_amount, v_deposit.currency), app_private.format_money(v_debit, v_deposit.currency),
           app_private.format_money(v_receivable, v_deposit.currency)));
  return v_reversal;
end;
$$;

-- Withdrawals wait while a reversal on the wallet is unreviewed.
create or replace function app_private.assert_no_open_reversal(p_wallet_id uuid)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from app_public.reversals r where r.wallet_id = p_wallet_id and r.reviewed_at is null) then
    raise exception 'Withdrawals from this wallet are paused while a chargeback or reversal is reviewed; contact support'
      using errcode = 'PW326'; -- WITHDRAWALS_BLOCKED
  end if;
end;
$$;

-- Every reversal with its receivable, for auditors and the runbook.
create or replace view audit.reversals as
  select r.id, r.kind, r.created_at, r.deposit_id, r.user_id, r.wallet_id, r.revio_payment_id, r.amount, r.currency,
         r.debited_amount, r.receivable_amount, r.entry_id, r.reviewed_at, r.reviewed_by, r.review_note,
         (r.reviewed_at is null) as withdrawals_blocked
    from app_public.reversals r
   order by r.created_at desc;

-- Admins: reversals, unreviewed first.
create or replace function app_public.admin_reversals()
returns setof app_public.reversals
language plpgsql
stable
security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_private.assert_admin();
  return query select r.* from app_public.reversals r order by r.reviewed_at nulls first, r.created_at desc limit 500;
end;
$$;
comment on function app_public.admin_reversals() is
  'Admins only: chargebacks and refunds Revio made after a credit, with the amount debited and the amount owed (chargeback receivable); unreviewed first.';

-- An admin has looked (and settled any receivable with an adjustment, or
-- decided to write it off): withdrawals may resume once none is left open.
create or replace function app_public.admin_review_reversal(reversal_id uuid, note text)
returns app_public.reversals
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_admin uuid := app_private.assert_admin();
  v_note text := app_private.assert_reason(admin_review_reversal.note);
  v_reversal app_public.reversals;
begin
  update app_public.reversals r set reviewed_at = now(), reviewed_by = v_admin, review_note = v_note
   where r.id = admin_review_reversal.reversal_id and r.reviewed_at is null
  returning r.* into v_reversal;
  if v_reversal.id is null then
    raise exception 'No unreviewed reversal has that id' using errcode = 'PW327'; -- REVERSAL_NOT_OPEN
  end if;
  perform app_private.log_admin_action('review_reversal', 'reversal', v_reversal.id::text,
    jsonb_build_object('deposit_id', v_reversal.deposit_id, 'amount', v_reversal.amount,
                       'receivable', v_reversal.receivable_amount, 'note', v_note));
  return v_reversal;
end;
$$;
comment on function app_public.admin_review_reversal(uuid, text) is
  'Admins only: mark a chargeback or reversal reviewed, with a note; withdrawals from the wallet resume when none is left open. Logged.';

revoke all on function app_private.apply_reversal(uuid, text, text, bigint) from public;
revoke all on function app_private.assert_no_open_reversal(uuid) from public;
revoke all on function app_public.admin_reversals() from public;
revoke all on function app_public.admin_review_reversal(uuid, text) from public;
grant execute on function app_public.admin_reversals() to app_admin;
grant execute on function app_public.admin_review_reversal(uuid, text) to app_admin;
grant select on audit.reversals to app_auditor;

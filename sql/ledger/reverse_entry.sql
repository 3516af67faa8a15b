-- Corrections never edit history: a reversal is a new entry with every
-- posting negated, linked to the original. An entry is reversed at most once
-- (unique reverses_entry_id), and a reversal is not itself reversible (post a
-- new entry instead). The reversal obeys every rule a normal entry does: it
-- fails with INSUFFICIENT_FUNDS if the money has already been spent, and
-- WALLET_FROZEN if it would debit a frozen wallet.

create or replace function ledger.reverse_entry(p_entry_id uuid, p_memo text default null)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry ledger.entries;
  v_legs ledger.leg[];
begin
  select e.* into v_entry from ledger.entries e where e.id = p_entry_id;
  if not found then
    raise exception 'Entry % does not exist', p_entry_id using errcode = 'PW114'; -- ENTRY_NOT_FOUND
  end if;
  if v_entry.reverses_entry_id is not null then
    raise exception 'Entry % is a reversal; post a new entry instead of reversing it', p_entry_id
      using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end if;
  if exists (select from ledger.entries r where r.reverses_entry_id = p_entry_id) then
    raise exception 'Entry % has already been reversed', p_entry_id using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end if;

  select array_agg(row(p.account_id, -p.amount)::ledger.leg) into v_legs
    from ledger.postings p where p.entry_id = p_entry_id;

  begin
    return ledger.post_entry('reversal', v_legs, coalesce(p_memo, 'Reversal of ' || coalesce(v_entry.memo, v_entry.kind::text)),
                             jsonb_build_object('reverses_kind', v_entry.kind), null, p_entry_id);
  exception when unique_violation then
    -- Two reversals raced; the unique key let one through.
    raise exception 'Entry % has already been reversed', p_entry_id using errcode = 'PW115'; -- ENTRY_NOT_REVERSIBLE
  end;
end;
$$;

revoke all on function ledger.reverse_entry(uuid, text) from public;

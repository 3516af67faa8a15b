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

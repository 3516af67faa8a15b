-- Bank accounts for withdrawals. The API (src/http/graphql/payments-plugin.ts)
-- encrypts the account number with BANK_ACCOUNT_ENCRYPTION_KEY before calling
-- add_bank_account, so the database only ever holds the ciphertext and the
-- last four digits; the worker decrypts it for the payout. The key is never
-- stored here.

-- Saves a bank account for the signed-in user; returns its id. Called by the
-- addBankAccount mutation with the caller's role and claims.
create or replace function app_private.add_bank_account(
  p_account_holder text,
  p_bank_name text,
  p_branch_code text,
  p_account_type text,
  p_account_number_last4 text,
  p_ciphertext bytea
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_holder text := btrim(p_account_holder);
  v_bank text := btrim(p_bank_name);
  v_branch text := regexp_replace(coalesce(p_branch_code, ''), '\s', '', 'g');
  v_type text := lower(btrim(p_account_type));
  v_id uuid;
begin
  if v_caller is null then
    raise exception 'Sign in to add a bank account' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  if v_holder is null or length(v_holder) not between 1 and 200
     or v_bank is null or length(v_bank) not between 1 and 100
     or v_branch !~ '^[0-9]{6}$'
     or v_type is null or v_type not in ('cheque', 'savings', 'transmission')
     or p_account_number_last4 is null or p_account_number_last4 !~ '^[0-9]{4}$'
     or p_ciphertext is null then
    raise exception 'Give the account holder (1-200 characters), the bank (1-100), a 6-digit branch code, the account type (cheque, savings or transmission) and an account number of 6 to 20 digits'
      using errcode = 'PW210'; -- BANK_ACCOUNT_INVALID
  end if;
  insert into app_public.bank_accounts (user_id, account_holder, bank_name, branch_code, account_type, account_number_last4)
  values (v_caller, v_holder, v_bank, v_branch, v_type::app_public.bank_account_type, p_account_number_last4)
  returning id into v_id;
  insert into app_private.bank_account_numbers (bank_account_id, ciphertext) values (v_id, p_ciphertext);
  return v_id;
end;
$$;

revoke all on function app_private.add_bank_account(text, text, text, text, text, bytea) from public;
grant execute on function app_private.add_bank_account(text, text, text, text, text, bytea) to app_user;

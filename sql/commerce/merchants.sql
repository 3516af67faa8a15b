-- Merchants: a user becomes one with becomeMerchant; admins suspend them.
-- The merchant role is checked in SQL, like admin: an active merchants row
-- for the signed-in user (kept in its own table rather than users.role, so an
-- admin can also sell and a suspension needs no role change).

-- The signed-in user's merchant id if they are an active merchant, else null.
create or replace function commerce.current_merchant_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select m.id
    from app_public.merchants m
    join app_public.users u on u.id = m.id
   where m.id = app_public.current_user_id()
     and m.status = 'active'
     and u.erased_at is null;
$$;

create or replace function commerce.assert_merchant()
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := commerce.current_merchant_id();
begin
  if v_id is null then
    if exists (select from app_public.merchants m where m.id = app_public.current_user_id() and m.status = 'suspended') then
      raise exception 'Your merchant account is suspended' using errcode = 'PW502'; -- MERCHANT_SUSPENDED
    end if;
    raise exception 'Only merchants may do this; call becomeMerchant first' using errcode = 'PW501'; -- MERCHANT_REQUIRED
  end if;
  return v_id;
end;
$$;

-- The GraphQL mutation `becomeMerchant`: makes the caller a merchant (or
-- renames an existing one). A suspended merchant stays suspended.
create or replace function app_public.become_merchant(display_name text)
returns app_public.merchants
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller uuid := app_public.current_user_id();
  v_name text := btrim(become_merchant.display_name);
  v_merchant app_public.merchants;
begin
  if v_caller is null then
    raise exception 'Sign in to become a merchant' using errcode = '42501'; -- PERMISSION_DENIED
  end if;
  if v_name is null or length(v_name) not between 1 and 100 then
    raise exception 'A display name of 1 to 100 characters is required' using errcode = 'PW503'; -- MERCHANT_NAME_INVALID
  end if;
  insert into app_public.merchants (id, display_name) values (v_caller, v_name)
  on conflict (id) do update set display_name = excluded.display_name, updated_at = now()
  returning * into v_merchant;
  return v_merchant;
end;
$$;
comment on function app_public.become_merchant(text) is
  E'Makes you a merchant with this display name (or renames you): you can then list products, sell them and see your sales. '
  'Your merchant wallet (one per currency) receives the money of your sales.';

-- The GraphQL mutation `adminSetMerchantStatus`: suspends or reactivates a
-- merchant. A suspended merchant cannot sell, change products or be paid.
create or replace function app_public.admin_set_merchant_status(merchant_id uuid, status app_public.merchant_status, reason text)
returns app_public.merchants
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reason text;
  v_merchant app_public.merchants;
begin
  perform app_private.assert_admin();
  v_reason := app_private.assert_reason(admin_set_merchant_status.reason);
  update app_public.merchants m
     set status = admin_set_merchant_status.status,
         suspension_reason = case when admin_set_merchant_status.status = 'suspended' then v_reason end,
         updated_at = now()
   where m.id = admin_set_merchant_status.merchant_id
  returning * into v_merchant;
  if v_merchant.id is null then
    raise exception 'Merchant % not found', admin_set_merchant_status.merchant_id using errcode = 'PW504'; -- MERCHANT_NOT_FOUND
  end if;
  perform app_private.log_admin_action('set_merchant_status', 'merchant', v_merchant.id::text,
                                       jsonb_build_object('status', v_merchant.status, 'reason', v_reason));
  return v_merchant;
end;
$$;
comment on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) is
  'Suspends or reactivates a merchant (admins only; logged). A suspended merchant''s products cannot be bought.';

revoke all on function commerce.current_merchant_id() from public;
revoke all on function commerce.assert_merchant() from public;
revoke all on function app_public.become_merchant(text) from public;
revoke all on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) from public;
grant execute on function app_public.become_merchant(text) to app_user;
grant execute on function app_public.admin_set_merchant_status(uuid, app_public.merchant_status, text) to app_admin;

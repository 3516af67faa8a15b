-- Keeps created_at honest and updated_at current on every table that has them.
create or replace function app_private.tg__timestamps()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  new.created_at := case when tg_op = 'INSERT' then now() else old.created_at end;
  new.updated_at := case when tg_op = 'UPDATE' and old.updated_at >= now()
                         then old.updated_at + interval '1 millisecond'
                         else now() end;
  return new;
end;
$$;
comment on function app_private.tg__timestamps() is
  'Trigger: sets created_at on insert (ignoring any supplied value) and bumps updated_at on every write.';

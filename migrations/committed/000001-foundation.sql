--! Previous: -
--! Hash: sha1:f84e3b89e631eeca4035e2891a3ecb17f2793f4c
--! Message: foundation

-- Foundation: extensions, schemas, default privileges, users and sessions.
-- Roles are cluster-wide and exist before any migration (src/db/bootstrap.ts,
-- docs/runbook.md). Tables live here, in history; functions, policies and
-- grants live in sql/ and are included, so each committed migration holds
-- the exact code it installed.

-- citext and pgcrypto are trusted extensions: the database owner may create them.
create extension if not exists citext with schema public;
create extension if not exists pgcrypto with schema public;

-- Nothing is usable by PUBLIC unless granted on purpose.
revoke all on schema public from public;
grant usage on schema public to app_anonymous, app_auditor;
alter default privileges revoke execute on functions from public;
alter default privileges revoke all on tables from public;
alter default privileges revoke all on sequences from public;

create schema app_public;   -- what the GraphQL API shows
create schema app_private;  -- secrets, sessions, inboxes: never exposed
create schema ledger;       -- the double-entry core
create schema audit;        -- read-only views for DBAs and auditors

grant usage on schema app_public to app_anonymous;
-- Auth functions in app_private are called by the API's sign-in plugin; each
-- function still needs its own EXECUTE grant.
grant usage on schema app_private to app_anonymous, authenticator;
grant usage on schema audit to app_auditor;

--! Included foundation/timestamps.sql
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
--! EndIncluded foundation/timestamps.sql

create type app_public.user_role as enum ('user', 'admin');

create table app_public.users (
  id         uuid primary key default uuidv7(),
  email      citext not null unique check (length(email) <= 254 and email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  full_name  text not null check (length(full_name) between 1 and 200),
  role       app_public.user_role not null default 'user',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app_public.users is E'@behavior -insert -delete\nA person who holds wallets.';
comment on column app_public.users.role is 'user or admin; changed only by an admin or the admin:grant CLI.';
create trigger _100_timestamps before insert or update on app_public.users
  for each row execute function app_private.tg__timestamps();

create table app_private.user_secrets (
  user_id       uuid primary key references app_public.users on delete cascade,
  password_hash text not null
);

create table app_private.sessions (
  id                uuid primary key default uuidv7(),
  user_id           uuid not null references app_public.users on delete cascade,
  created_at        timestamptz not null default now(),
  last_refreshed_at timestamptz,
  revoked_at        timestamptz,
  revoked_reason    text check (revoked_reason in ('logout', 'refresh_token_reuse', 'admin'))
);
create index sessions_user_id_idx on app_private.sessions (user_id);

create table app_private.refresh_tokens (
  token_hash bytea primary key,
  session_id uuid not null references app_private.sessions on delete cascade,
  issued_at  timestamptz not null default now(),
  expires_at timestamptz not null,
  rotated_at timestamptz
);
create index refresh_tokens_session_id_idx on app_private.refresh_tokens (session_id);

create table app_private.login_attempts (
  id           bigint generated always as identity primary key,
  email        citext not null,
  attempted_at timestamptz not null default now(),
  succeeded    boolean not null
);
create index login_attempts_email_time_idx on app_private.login_attempts (email, attempted_at desc);

-- What every sign-in function returns; the API turns it into tokens or an error.
create type app_private.auth_result as (
  outcome       text,         -- ok | invalid | locked | reused
  user_id       uuid,
  email         text,
  full_name     text,
  role          text,
  session_id    uuid,
  refresh_token text,
  retry_at      timestamptz
);

--! Included foundation/migration_status.sql
-- /ready asks whether the database has every committed migration. The API's
-- login role may not read graphile_migrate, so this definer function answers
-- with the name of the last applied migration only.
create or replace function app_private.latest_migration()
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select max(filename) from graphile_migrate.migrations;
$$;
revoke all on function app_private.latest_migration() from public;
grant execute on function app_private.latest_migration() to authenticator;
--! EndIncluded foundation/migration_status.sql
--! Included auth/current_user.sql
-- Who is calling. Express verifies the JWT and passes its claims as
-- request.jwt.claims.*; these functions are what RLS policies consult.

-- The session named by the token, if it is still live. Checking the session
-- (not just the signature) makes logout and token-reuse revocation take effect
-- at once instead of when the 15-minute access token expires.
create or replace function app_public.current_session_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.id
    from app_private.sessions s
   where s.id = nullif(current_setting('request.jwt.claims.sid', true), '')::uuid
     and s.user_id = nullif(current_setting('request.jwt.claims.sub', true), '')::uuid
     and s.revoked_at is null;
$$;
comment on function app_public.current_session_id() is
  E'@behavior -queryField\nThe live session of the caller, or null.';

create or replace function app_public.current_user_id()
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.user_id
    from app_private.sessions s
   where s.id = app_public.current_session_id();
$$;
comment on function app_public.current_user_id() is
  E'@behavior -queryField\nThe signed-in user''s id, or null for visitors and revoked sessions.';

create or replace function app_public."current_user"()
returns app_public.users
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select u.* from app_public.users u where u.id = app_public.current_user_id();
$$;
comment on function app_public."current_user"() is 'The signed-in user, or null.';

revoke all on function app_public.current_session_id() from public;
revoke all on function app_public.current_user_id() from public;
revoke all on function app_public."current_user"() from public;
grant execute on function app_public.current_session_id() to app_anonymous;
grant execute on function app_public.current_user_id() to app_anonymous;
grant execute on function app_public."current_user"() to app_anonymous;
--! EndIncluded auth/current_user.sql
--! Included auth/users_policies.sql
-- Users see and edit only their own row. Emails and roles are never writable
-- through the API: the only writable column is full_name.
alter table app_public.users enable row level security;

drop policy if exists select_own on app_public.users;
create policy select_own on app_public.users
  for select to app_user
  using (id = (select app_public.current_user_id()));

drop policy if exists update_own on app_public.users;
create policy update_own on app_public.users
  for update to app_user
  using (id = (select app_public.current_user_id()));

revoke all on app_public.users from public, app_anonymous, app_user;
grant select on app_public.users to app_user;
grant update (full_name) on app_public.users to app_user;
--! EndIncluded auth/users_policies.sql
--! Included auth/sessions.sql
-- Sessions and refresh tokens. A session is a token family: every refresh
-- rotates the token; presenting a rotated token again revokes the family
-- (refresh-token rotation with reuse detection, OAuth 2.0 Security BCP 4.14).
-- Only SHA-256 hashes of tokens are stored: 256 random bits need no slow hash.

create or replace function app_private.refresh_token_hash(token text)
returns bytea
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select sha256(convert_to(coalesce(token, ''), 'UTF8'));
$$;

-- Mints a refresh token for a session and returns it in clear, once.
create or replace function app_private.issue_refresh_token(p_session_id uuid)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  -- base64url without padding: 43 characters, 256 bits.
  v_token text := translate(encode(gen_random_bytes(32), 'base64'), '+/=', '-_');
begin
  insert into app_private.refresh_tokens (token_hash, session_id, expires_at)
  values (app_private.refresh_token_hash(v_token), p_session_id, now() + interval '14 days');
  return v_token;
end;
$$;

-- Opens a session for a user who has just proved who they are.
create or replace function app_private.start_session(p_user app_public.users)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_session_id uuid;
begin
  insert into app_private.sessions (user_id) values (p_user.id) returning id into v_session_id;
  return row('ok', p_user.id, p_user.email::text, p_user.full_name, p_user.role::text,
             v_session_id, app_private.issue_refresh_token(v_session_id), null)::app_private.auth_result;
end;
$$;

revoke all on function app_private.issue_refresh_token(uuid) from public;
revoke all on function app_private.start_session(app_public.users) from public;
--! EndIncluded auth/sessions.sql
--! Included auth/register.sql
-- Sign-up. Validation errors are raised with registered SQLSTATEs (the
-- trailing comment names the stable code; tests keep the two in step).

create or replace function app_private.assert_valid_registration(p_email text, p_password text, p_full_name text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_email is null or length(p_email) > 254 or p_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
    raise exception 'Enter a valid email address' using errcode = 'PW001'; -- EMAIL_INVALID
  end if;
  -- bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
  if p_password is null or length(p_password) < 10 or octet_length(p_password) > 72 then
    raise exception 'Passwords must be 10 to 72 bytes long' using errcode = 'PW002'; -- PASSWORD_WEAK
  end if;
  if p_full_name is null or length(btrim(p_full_name)) not between 1 and 200 then
    raise exception 'Full name must be 1 to 200 characters' using errcode = 'PW003'; -- FULL_NAME_INVALID
  end if;
end;
$$;

create or replace function app_private.register(p_email text, p_password text, p_full_name text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_user app_public.users;
begin
  perform app_private.assert_valid_registration(p_email, p_password, p_full_name);
  insert into app_public.users (email, full_name)
  values (btrim(p_email), btrim(p_full_name))
  on conflict (email) do nothing
  returning * into v_user;
  if v_user.id is null then
    raise exception 'An account with this email address already exists' using errcode = 'PW004'; -- EMAIL_TAKEN
  end if;
  insert into app_private.user_secrets (user_id, password_hash)
  values (v_user.id, crypt(p_password, gen_salt('bf', 10)));
  return app_private.start_session(v_user);
end;
$$;

revoke all on function app_private.assert_valid_registration(text, text, text) from public;
revoke all on function app_private.register(text, text, text) from public;
grant execute on function app_private.register(text, text, text) to app_anonymous;
--! EndIncluded auth/register.sql
--! Included auth/login.sql
-- Sign-in with throttling. Failures are *returned* (outcome 'invalid' or
-- 'locked'), not raised, so that the recorded attempt survives: an exception
-- would roll the attempt back and make the lockout count nothing.

-- How long the caller must wait, or null when another attempt is allowed:
-- 5 failures within 15 minutes (since the last success) lock the email until
-- the oldest of those 5 leaves the window.
create or replace function app_private.login_locked_until(p_email citext)
returns timestamptz
language sql
stable
set search_path = pg_catalog, public, pg_temp
as $$
  with recent_failures as (
    select a.attempted_at
      from app_private.login_attempts a
     where a.email = p_email
       and not a.succeeded
       and a.attempted_at > now() - interval '15 minutes'
       and a.attempted_at > coalesce((select max(s.attempted_at)
                                        from app_private.login_attempts s
                                       where s.email = p_email and s.succeeded), '-infinity')
     order by a.attempted_at desc
     limit 5
  )
  select min(attempted_at) + interval '15 minutes'
    from recent_failures
  having count(*) >= 5;
$$;

create or replace function app_private.login(p_email text, p_password text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_email citext := btrim(coalesce(p_email, ''));
  v_locked_until timestamptz;
  v_user app_public.users;
  v_hash text;
begin
  -- One attempt per email at a time, so parallel guesses cannot all slip under the limit.
  perform pg_advisory_xact_lock(hashtextextended('login:' || lower(v_email::text), 0));

  v_locked_until := app_private.login_locked_until(v_email);
  if v_locked_until is not null then
    return row('locked', null, null, null, null, null, null, v_locked_until)::app_private.auth_result;
  end if;

  select u.* into v_user from app_public.users u where u.email = v_email;
  select s.password_hash into v_hash from app_private.user_secrets s where s.user_id = v_user.id;

  -- Unknown emails still pay for one bcrypt so response time does not reveal
  -- which addresses have accounts.
  if v_hash is null
     or crypt(coalesce(p_password, ''), coalesce(v_hash, gen_salt('bf', 10))) is distinct from v_hash then
    insert into app_private.login_attempts (email, succeeded) values (v_email, false);
    return row('invalid', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  insert into app_private.login_attempts (email, succeeded) values (v_email, true);
  return app_private.start_session(v_user);
end;
$$;

revoke all on function app_private.login_locked_until(citext) from public;
revoke all on function app_private.login(text, text) from public;
grant execute on function app_private.login(text, text) to app_anonymous;
--! EndIncluded auth/login.sql
--! Included auth/refresh.sql
-- Token rotation and logout. Like login, outcomes are returned rather than
-- raised so that a revocation caused by token reuse is committed.

create or replace function app_private.refresh_session(p_refresh_token text)
returns app_private.auth_result
language plpgsql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  v_token app_private.refresh_tokens;
  v_session app_private.sessions;
  v_user app_public.users;
begin
  -- FOR UPDATE: two refreshes racing with one token are serialised, and the
  -- loser sees a rotated token, which is exactly the reuse we must catch.
  select * into v_token
    from app_private.refresh_tokens t
   where t.token_hash = app_private.refresh_token_hash(p_refresh_token)
     for update;
  select * into v_session from app_private.sessions s where s.id = v_token.session_id for update;
  if v_token.session_id is null or v_token.expires_at <= now() or v_session.revoked_at is not null then
    return row('invalid', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  if v_token.rotated_at is not null then
    update app_private.sessions
       set revoked_at = now(), revoked_reason = 'refresh_token_reuse'
     where id = v_session.id;
    return row('reused', null, null, null, null, null, null, null)::app_private.auth_result;
  end if;

  update app_private.refresh_tokens set rotated_at = now() where token_hash = v_token.token_hash;
  update app_private.sessions set last_refreshed_at = now() where id = v_session.id;
  select * into v_user from app_public.users u where u.id = v_session.user_id;
  return row('ok', v_user.id, v_user.email::text, v_user.full_name, v_user.role::text,
             v_session.id, app_private.issue_refresh_token(v_session.id), null)::app_private.auth_result;
end;
$$;

-- Ends the session the token belongs to. Unknown tokens are not an error:
-- logging out twice is fine, and the answer must not reveal which tokens exist.
create or replace function app_private.logout(p_refresh_token text)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, public, pg_temp
as $$
  update app_private.sessions s
     set revoked_at = now(), revoked_reason = 'logout'
    from app_private.refresh_tokens t
   where t.token_hash = app_private.refresh_token_hash(p_refresh_token)
     and s.id = t.session_id
     and s.revoked_at is null;
$$;

revoke all on function app_private.refresh_session(text) from public;
revoke all on function app_private.logout(text) from public;
grant execute on function app_private.refresh_session(text) to app_anonymous;
grant execute on function app_private.logout(text) to app_anonymous;
--! EndIncluded auth/refresh.sql

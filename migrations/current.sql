-- Enter migration here
-- ==== sec-accounts ====
-- Issue 9 §2 and §4: per-operation limits (weighted rate-limit hits), email
-- verification, password change and reset, sign out everywhere, absolute
-- session lifetime, and the client address / user agent of sign-ins and money
-- requests for fraud review (docs/security.md).

-- Email verification. Accounts that existed before verification was introduced
-- are treated as verified (they were trusted until now); new ones start unverified.
do $$
begin
  if not exists (select from information_schema.columns
                  where table_schema = 'app_public' and table_name = 'users' and column_name = 'email_verified_at') then
    alter table app_public.users add column email_verified_at timestamptz;
    update app_public.users set email_verified_at = created_at;
  end if;
end
$$;
comment on column app_public.users.email_verified_at is
  'When the email address was proven (verification link or password reset); null: unverified, so the account cannot receive transfers or withdraw.';

-- Single-use tokens sent by email; only their SHA-256 is stored.
create table if not exists app_private.email_tokens (
  token_hash bytea primary key,
  user_id    uuid not null references app_public.users on delete cascade,
  purpose    text not null check (purpose in ('verify_email', 'password_reset')),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at    timestamptz
);
create index if not exists email_tokens_user_purpose_idx on app_private.email_tokens (user_id, purpose, created_at desc);

-- Emails to send: written in the transaction that decides to send, delivered
-- by the send_email job. params (which can hold a clear token) is emptied once sent.
create table if not exists app_private.email_outbox (
  id         bigint generated always as identity primary key,
  user_id    uuid references app_public.users on delete cascade,
  to_address citext not null,
  template   text not null check (template in ('verify_email', 'password_reset', 'password_changed')),
  params     jsonb,
  created_at timestamptz not null default now(),
  sent_at    timestamptz
);
create index if not exists email_outbox_user_idx on app_private.email_outbox (user_id);

-- Sessions can now also end by a password change or reset, by "sign out
-- everywhere", or by reaching their absolute lifetime.
alter table app_private.sessions drop constraint if exists sessions_revoked_reason_check;
alter table app_private.sessions add constraint sessions_revoked_reason_check
  check (revoked_reason in ('logout', 'refresh_token_reuse', 'admin', 'password_change', 'password_reset', 'sign_out_everywhere', 'expired'));

-- Where sign-in attempts and money requests came from (admins and auditors only).
alter table app_private.login_attempts add column if not exists client_ip inet;
alter table app_private.login_attempts add column if not exists user_agent text;

create table if not exists app_private.client_activity (
  id          bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  action      text not null check (action in ('deposit_requested', 'withdrawal_requested', 'bank_account_added',
                                              'bank_account_changed', 'bank_account_removed')),
  user_id     uuid,
  subject_id  uuid,
  client_ip   inet,
  user_agent  text,
  request_id  text
);
create index if not exists client_activity_user_idx on app_private.client_activity (user_id, occurred_at desc);

--!include abuse/operation_limits.sql
--!include accounts/email.sql
--!include accounts/passwords.sql
--!include accounts/client_activity.sql
--!include auth/register.sql
--!include auth/login.sql
--!include auth/refresh.sql
--!include ledger/transfer.sql
--!include payments/withdrawals.sql

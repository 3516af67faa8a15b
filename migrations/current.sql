-- Issue 13: a cheaper posting. post_entry does the bookkeeping itself, once
-- per entry (one UPDATE for its accounts, then the entry and postings), under
-- a transaction-local proof that the triggers trust; writers without it get
-- every check from the posting trigger, one row at a time. The accounts
-- guard is one WHEN condition that calls its function only to refuse.
-- post_entry proves its entries balanced while writing them; the deferred
-- check is for entries written by hand (metadata-only: no table rewrite).
alter table ledger.entries add column if not exists balanced_at_write boolean not null default false;
comment on column ledger.entries.balanced_at_write is
  'True when post_entry proved the entry balanced as it wrote it; false entries are checked at commit.';

--!include ledger/guards.sql
--!include ledger/posting_triggers.sql
--!include ledger/post_entry.sql

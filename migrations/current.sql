-- ==== ledger-perf ====
-- The ledger write path in fewer statements (issue 13): post_entry locks and
-- checks in one statement and writes the entry with its postings in another;
-- the postings' apply trigger runs once per statement; transfer reads the
-- sender and the recipient in one statement.
--!include ledger/post_entry.sql
--!include ledger/posting_triggers.sql
--!include ledger/transfer.sql
-- The API counts rate-limit hits in the process and adds them in batches.
--!include abuse/rate_limit.sql

-- ==== merge: ledger-perf with sec-accounts ====
-- The per-field weights moved into the API's RateCounter (src/http/abuse.ts),
-- which adds hits with app_private.rate_limit_add; the weighted per-request
-- rate_limit_hit of migration 000006 has no caller left.
drop function if exists app_private.rate_limit_hit(text[], int[], int, int[]);

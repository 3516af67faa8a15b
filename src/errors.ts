// The registry of stable error codes. SQL raises the SQLSTATEs below (with the
// code name in a trailing comment); the API reports `extensions.code`.
// docs/errors.md is checked against this list by tests/error-codes.test.ts.

export interface ErrorCodeEntry {
  code: string;
  /** SQLSTATE raised by SQL for this code; absent for codes raised in TypeScript. */
  sqlstate?: string;
  /** CHECK constraints whose violation means this code (generated CRUD mutations hit them directly). */
  constraints?: string[];
  /** HTTP status when the error ends the request before GraphQL runs. */
  httpStatus?: number;
  description: string;
}

export const ERROR_CODES: readonly ErrorCodeEntry[] = [
  // Sign-up and sign-in
  { code: 'EMAIL_INVALID', sqlstate: 'PW001', description: 'The email address is missing, too long or malformed.' },
  { code: 'PASSWORD_WEAK', sqlstate: 'PW002', description: 'Passwords must be 10 to 72 bytes long.' },
  { code: 'FULL_NAME_INVALID', sqlstate: 'PW003', constraints: ['users_full_name_check'], description: 'Full name must be 1 to 200 characters.' },
  { code: 'EMAIL_TAKEN', sqlstate: 'PW004', description: 'An account with this email address already exists.' },
  { code: 'INVALID_CREDENTIALS', description: 'Email or password is wrong (deliberately not saying which).' },
  { code: 'ACCOUNT_LOCKED', description: '5 failed sign-ins within 15 minutes; retry after `extensions.retryAt`.' },
  { code: 'REFRESH_TOKEN_INVALID', description: 'The refresh token is unknown, expired, or its session has ended.' },
  { code: 'REFRESH_TOKEN_REUSED', description: 'A rotated refresh token was presented again; the whole session was revoked.' },
  // Ledger: wallets, transfers, holds, entries (sql/ledger)
  { code: 'INSUFFICIENT_FUNDS', sqlstate: 'PW101', description: 'The wallet\'s available balance (balance minus holds) is smaller than the amount.' },
  { code: 'WALLET_FROZEN', sqlstate: 'PW102', description: 'The wallet is frozen: it can receive money but not be debited or have holds placed.' },
  { code: 'AMOUNT_INVALID', sqlstate: 'PW103', description: 'The amount is missing, not a whole number of minor units, not positive, or absurdly large.' },
  { code: 'CURRENCY_MISMATCH', sqlstate: 'PW104', description: 'The currencies do not match (e.g. the recipient has no wallet in the sender\'s currency).' },
  { code: 'CURRENCY_INVALID', sqlstate: 'PW105', description: 'Not a supported ISO 4217 currency code.' },
  { code: 'WALLET_NOT_FOUND', sqlstate: 'PW106', description: 'No such wallet among yours (someone else\'s wallet is reported the same way).' },
  { code: 'RECIPIENT_NOT_FOUND', sqlstate: 'PW107', description: 'No user has that email address.' },
  { code: 'TRANSFER_TO_SELF', sqlstate: 'PW108', description: 'The recipient is the sender.' },
  { code: 'IDEMPOTENCY_KEY_REUSED', sqlstate: 'PW109', description: 'This idempotency key was already used by you for a different request.' },
  { code: 'IDEMPOTENCY_KEY_INVALID', sqlstate: 'PW110', description: 'An idempotency key of 1 to 200 characters is required.' },
  { code: 'MEMO_INVALID', sqlstate: 'PW111', description: 'The memo is longer than 140 characters.' },
  { code: 'HOLD_NOT_FOUND', sqlstate: 'PW112', description: 'No such hold.' },
  { code: 'HOLD_NOT_OPEN', sqlstate: 'PW113', description: 'The hold was already captured, released or expired, or is past its expiry.' },
  { code: 'ENTRY_NOT_FOUND', sqlstate: 'PW114', description: 'No such journal entry.' },
  { code: 'ENTRY_NOT_REVERSIBLE', sqlstate: 'PW115', description: 'The entry was already reversed, or is itself a reversal.' },
  { code: 'ENTRY_UNBALANCED', sqlstate: 'PW120', description: 'A journal entry must have two or more postings summing to zero in each currency.' },
  { code: 'LEDGER_IMMUTABLE', sqlstate: 'PW121', description: 'Entries and postings are append-only; account identity and hold terms never change; nothing is deleted.' },
  { code: 'BALANCE_DIRECT_WRITE', sqlstate: 'PW122', description: 'A stored balance or held amount was written directly instead of through a posting or hold.' },
  { code: 'ACCOUNT_NOT_FOUND', sqlstate: 'PW125', description: 'A ledger account named in the operation does not exist.' },
  { code: 'HOLD_EXPIRY_INVALID', sqlstate: 'PW126', description: 'A hold must expire in the future.' },
  // Payments: deposits, bank accounts, withdrawals (sql/payments)
  { code: 'DEPOSIT_AMOUNT_OUT_OF_RANGE', sqlstate: 'PW201', description: 'The deposit is below the minimum or above the maximum (DEPOSIT_MIN_CENTS, DEPOSIT_MAX_CENTS); the message names both.' },
  { code: 'WITHDRAWAL_AMOUNT_OUT_OF_RANGE', sqlstate: 'PW202', description: 'The withdrawal is below the minimum or above the maximum (WITHDRAWAL_MIN_CENTS, WITHDRAWAL_MAX_CENTS); the message names both.' },
  { code: 'WITHDRAWAL_DAILY_LIMIT_EXCEEDED', sqlstate: 'PW203', description: 'Withdrawals from this wallet would exceed the 24-hour limit (WITHDRAWAL_DAILY_LIMIT_CENTS); the message says how much is left.' },
  { code: 'BANK_ACCOUNT_INVALID', sqlstate: 'PW210', description: 'Account holder, bank, 6-digit branch code, account type or the 6 to 20 digit account number is missing or malformed.' },
  { code: 'BANK_ACCOUNT_NOT_FOUND', sqlstate: 'PW211', description: 'No such bank account among yours (someone else\'s is reported the same way).' },
  // Admin and auditor operations, erasure (sql/admin, sql/privacy)
  { code: 'ADMIN_SELF_APPROVAL', sqlstate: 'PW301', description: 'Maker-checker: another admin must approve an adjustment you requested or one to your own wallet.' },
  { code: 'ADJUSTMENT_NOT_FOUND', sqlstate: 'PW302', description: 'No such balance adjustment.' },
  { code: 'ADJUSTMENT_NOT_PENDING', sqlstate: 'PW303', description: 'The balance adjustment was already approved or rejected.' },
  { code: 'REASON_REQUIRED', sqlstate: 'PW304', description: 'Admin actions that change something need a reason (or note) of 1 to 500 characters.' },
  { code: 'JOB_NOT_DEAD', sqlstate: 'PW305', description: 'No dead job (one that used up its attempts) has that id.' },
  { code: 'DISCREPANCY_NOT_FOUND', sqlstate: 'PW306', description: 'No open reconciliation discrepancy has that id.' },
  { code: 'PAYMENT_NOT_FLAGGED', sqlstate: 'PW307', description: 'No deposit or withdrawal flagged needs_attention has that id.' },
  { code: 'USER_NOT_FOUND', sqlstate: 'PW308', description: 'No such (non-erased) user.' },
  { code: 'ADMIN_SELF_ACTION', sqlstate: 'PW309', description: 'Admins cannot change their own role or erase themselves through the admin operations.' },
  { code: 'AUDIT_LOG_IMMUTABLE', sqlstate: 'PW310', description: 'The admin log is append-only: no update, delete or truncate.' },
  { code: 'ACCOUNT_NOT_EMPTY', sqlstate: 'PW311', description: 'deleteMyAccount: every wallet must be at zero with nothing held, and no deposit or withdrawal may be open.' },
  { code: 'USER_ERASED', sqlstate: 'PW312', description: 'The account was already erased.' },
  // Worker liveness (sql/worker/heartbeats.sql): called by the worker only
  { code: 'WORKER_ID_INVALID', sqlstate: 'PW700', description: 'A worker heartbeat needs a worker id of 1 to 200 characters.' },
  { code: 'STALE_AFTER_TOO_SHORT', sqlstate: 'PW701', description: 'release_stale_worker_locks: a heartbeat counts as stale after at least 5 seconds.' },
  // Abuse limits (src/http/rate-limit.ts, src/http/graphql/limits-plugin.ts)
  { code: 'RATE_LIMITED', httpStatus: 429, description: 'Too many requests from this address or account; retry after the Retry-After header (seconds).' },
  { code: 'QUERY_TOO_DEEP', description: 'The GraphQL operation nests deeper than GRAPHQL_MAX_DEPTH.' },
  { code: 'QUERY_TOO_COMPLEX', description: 'The GraphQL operation could return more than GRAPHQL_MAX_COMPLEXITY fields (page sizes multiply).' },
  { code: 'PAGE_SIZE_TOO_LARGE', description: 'first/last is larger than GRAPHQL_MAX_PAGE_SIZE.' },
  { code: 'INTROSPECTION_DISABLED', description: 'Schema introspection is off on this server (GRAPHQL_INTROSPECTION).' },
  { code: 'BAD_REQUEST', httpStatus: 400, description: 'The request body is not valid JSON (or form data) for its content type.' },
  // Transport
  { code: 'TOKEN_INVALID', httpStatus: 401, description: 'The bearer token failed verification (signature, algorithm, issuer, audience or claims).' },
  { code: 'TOKEN_EXPIRED', httpStatus: 401, description: 'The bearer token has expired; call refreshSession.' },
  { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413, description: 'The request body exceeds the size limit.' },
  { code: 'NOT_FOUND', httpStatus: 404, description: 'No such route.' },
  { code: 'WEBHOOK_SIGNATURE_INVALID', httpStatus: 401, description: 'POST /webhooks/revio: X-Signature is missing or does not verify with Revio\'s key; the delivery is recorded and nothing is applied.' },
  { code: 'WEBHOOK_KEY_UNAVAILABLE', httpStatus: 503, description: 'POST /webhooks/revio: Revio\'s public key could not be fetched yet; nothing was recorded, Revio retries.' },
  // Database-level refusals that reach clients
  { code: 'PERMISSION_DENIED', sqlstate: '42501', description: 'The caller may not do this (privilege or row-level security).' },
  { code: 'TEXT_INVALID', sqlstate: '22021', description: 'A text value holds a character PostgreSQL cannot store (a NUL byte).' },
  { code: 'INTERNAL_ERROR', httpStatus: 500, description: 'Unexpected; the message carries an error id that is in the server log.' },
];

const bySqlstate = new Map(ERROR_CODES.filter((e) => e.sqlstate).map((e) => [e.sqlstate!, e]));
const byConstraint = new Map(ERROR_CODES.flatMap((e) => (e.constraints ?? []).map((c) => [c, e] as const)));

/**
 * The client-facing form of an expected PostgreSQL error, or undefined. Raised
 * codes keep the SQL's own message; a violated CHECK constraint gets the
 * registry's description, because PostgreSQL's message names table and constraint.
 */
export function describeDatabaseError(error: { code?: unknown; constraint?: unknown; message: string }): { code: string; message: string } | undefined {
  if (error.code === '23514' && typeof error.constraint === 'string') {
    const entry = byConstraint.get(error.constraint);
    return entry && { code: entry.code, message: entry.description };
  }
  const entry = typeof error.code === 'string' ? bySqlstate.get(error.code) : undefined;
  return entry && { code: entry.code, message: error.message };
}

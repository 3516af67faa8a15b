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
  // Accounts: verification, password change and reset, sessions (sql/accounts)
  { code: 'EMAIL_TOKEN_INVALID', sqlstate: 'PW005', description: 'verifyEmail: the token is unknown, was already used, or has expired (3 days); ask for a new link with resendVerificationEmail.' },
  { code: 'PASSWORD_RESET_TOKEN_INVALID', sqlstate: 'PW006', description: 'resetPassword: the token is unknown, was already used, or has expired (15 minutes); ask for a new one.' },
  { code: 'RECIPIENT_UNVERIFIED', sqlstate: 'PW007', description: 'transfer: the recipient has not verified their email address yet, so they cannot receive money.' },
  { code: 'EMAIL_NOT_VERIFIED', sqlstate: 'PW008', description: 'requestWithdrawal: verify your email address first (an unverified account can only deposit).' },
  { code: 'CURRENT_PASSWORD_INCORRECT', description: 'changePassword: the current password is wrong (counted as a failed sign-in towards ACCOUNT_LOCKED).' },
  { code: 'SESSION_EXPIRED', description: 'refreshSession: the session reached its absolute lifetime (SESSION_MAX_AGE_DAYS); sign in again.' },
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
  { code: 'ADMIN_SELF_APPROVAL', sqlstate: 'PW301', description: 'Maker-checker: another admin must approve a request (adjustment or role change) you made.' },
  { code: 'ADJUSTMENT_NOT_FOUND', sqlstate: 'PW302', description: 'No such balance adjustment.' },
  { code: 'ADJUSTMENT_NOT_PENDING', sqlstate: 'PW303', description: 'The balance adjustment was already approved or rejected.' },
  { code: 'REASON_REQUIRED', sqlstate: 'PW304', description: 'Admin actions that change something need a reason (or note) of 1 to 500 characters.' },
  { code: 'JOB_NOT_DEAD', sqlstate: 'PW305', description: 'No dead job (one that used up its attempts) has that id.' },
  { code: 'DISCREPANCY_NOT_FOUND', sqlstate: 'PW306', description: 'No open reconciliation discrepancy has that id.' },
  { code: 'PAYMENT_NOT_FLAGGED', sqlstate: 'PW307', description: 'No deposit or withdrawal flagged needs_attention has that id.' },
  { code: 'USER_NOT_FOUND', sqlstate: 'PW308', description: 'No such (non-erased) user.' },
  { code: 'ADMIN_SELF_ACTION', sqlstate: 'PW309', description: 'Admins cannot request or approve a change of their own role, or erase themselves through the admin operations.' },
  { code: 'AUDIT_LOG_IMMUTABLE', sqlstate: 'PW310', description: 'The admin log is append-only: no update, delete or truncate.' },
  { code: 'ACCOUNT_NOT_EMPTY', sqlstate: 'PW311', description: 'deleteMyAccount: every wallet must be at zero with nothing held, and no deposit or withdrawal may be open.' },
  { code: 'USER_ERASED', sqlstate: 'PW312', description: 'The account was already erased.' },
  // Maker-checker one admin cannot defeat (sql/admin/maker_checker.sql). Refusals are returned (and logged), not raised.
  { code: 'ADJUSTMENT_OWN_WALLET', description: 'An admin may not request, or approve, an adjustment to a wallet they own; the refusal is in the admin log.' },
  { code: 'ADMIN_RECENTLY_VOUCHED', description: 'The approver and the requester are tied by a role change one made for the other within ADMIN_VOUCH_WINDOW_DAYS (default 7); the refusal is in the admin log.' },
  { code: 'ROLE_UNCHANGED', sqlstate: 'PW401', description: 'The user already has that role (or their role changed since the request was made).' },
  { code: 'ROLE_CHANGE_PENDING', sqlstate: 'PW402', description: 'A role change for this user is already waiting for approval.' },
  { code: 'ROLE_CHANGE_NOT_FOUND', sqlstate: 'PW403', description: 'No such role change request.' },
  { code: 'ROLE_CHANGE_NOT_PENDING', sqlstate: 'PW404', description: 'The role change request was already approved or rejected.' },
  { code: 'ADMIN_ERASE_ADMIN', sqlstate: 'PW405', description: 'adminEraseUser: the person is an admin; remove the role first (a role change another admin approves).' },
  // Abuse limits (src/http/abuse.ts, src/http/operation-limits.ts, src/http/graphql/limits-plugin.ts)
  // Commerce: merchants, products, orders, refunds (sql/commerce)
  { code: 'MERCHANT_REQUIRED', sqlstate: 'PW501', description: 'Only merchants may do this: call becomeMerchant first.' },
  { code: 'MERCHANT_SUSPENDED', sqlstate: 'PW502', description: 'Your merchant account is suspended by an admin.' },
  { code: 'MERCHANT_NAME_INVALID', sqlstate: 'PW503', description: 'A merchant display name has 1 to 100 characters.' },
  { code: 'MERCHANT_NOT_FOUND', sqlstate: 'PW504', description: 'No merchant has that id.' },
  { code: 'PRODUCT_INVALID', sqlstate: 'PW510', description: 'Product name (1 to 200 characters), description (at most 2000), price (1 to 10^15 minor units) or stock (0 to 10^8, or null) is invalid.' },
  { code: 'PRODUCT_NOT_FOUND', sqlstate: 'PW511', description: 'No such product among yours (someone else\'s is reported the same way).' },
  { code: 'PRODUCT_NOT_AVAILABLE', sqlstate: 'PW512', description: 'A product in the order does not exist, is inactive, or its merchant is suspended.' },
  { code: 'ORDER_ITEMS_INVALID', sqlstate: 'PW520', description: 'An order has 1 to 50 items, each a product id and a quantity from 1 to 10000.' },
  { code: 'OUT_OF_STOCK', sqlstate: 'PW521', description: 'Not enough units of a product are left; nothing was bought or reserved.' },
  { code: 'ORDER_MIXED', sqlstate: 'PW522', description: 'An order is for products of one merchant in one currency.' },
  { code: 'PURCHASE_FROM_SELF', sqlstate: 'PW523', description: 'Merchants cannot buy their own products.' },
  { code: 'ORDER_NOT_FOUND', sqlstate: 'PW530', description: 'No such order among yours (as buyer for reservations, as merchant for refunds).' },
  { code: 'ORDER_STATE_INVALID', sqlstate: 'PW531', description: 'The order is not in a state that allows this (e.g. confirming a non-reservation, refunding an unpaid order).' },
  { code: 'REFUND_INVALID', sqlstate: 'PW540', description: 'Refunded items must be lines of the order with at most their unrefunded quantity; reasons have at most 500 characters.' },
  // Money lifecycle: refunds, chargebacks, cancellations (sql/payments/refunds.sql, chargebacks.sql, cancellations.sql)
  { code: 'DEPOSIT_NOT_FOUND', sqlstate: 'PW320', description: 'No such deposit among yours (someone else\'s is reported the same way).' },
  { code: 'DEPOSIT_NOT_REFUNDABLE', sqlstate: 'PW321', description: 'Only a credited (paid) deposit can be refunded.' },
  { code: 'REFUND_WINDOW_CLOSED', sqlstate: 'PW322', description: 'The owner may refund a deposit only within `REFUND_USER_WINDOW_SECONDS` of the credit; after that, support (an admin) can.' },
  { code: 'REFUND_IN_PROGRESS', sqlstate: 'PW323', description: 'A refund of this deposit is already under way; wait until it succeeds or fails.' },
  { code: 'REFUND_AMOUNT_INVALID', sqlstate: 'PW324', description: 'The refund must be at least 1 minor unit and at most what is left of the deposit (less earlier refunds and chargebacks).' },
  { code: 'PAYMENT_CLOSED', sqlstate: 'PW325', description: 'Internal to the worker: the deposit, withdrawal or refund was cancelled or settled before it was sent to Revio.' },
  { code: 'WITHDRAWALS_BLOCKED', sqlstate: 'PW326', description: 'A chargeback or reversal on this wallet waits for an admin\'s review; withdrawals resume afterwards.' },
  { code: 'REVERSAL_NOT_OPEN', sqlstate: 'PW327', description: 'No unreviewed chargeback or reversal has that id.' },
  { code: 'DEPOSIT_NOT_CANCELLABLE', sqlstate: 'PW328', description: 'Only a deposit that is not paid yet (pending or awaiting_payment) can be cancelled.' },
  { code: 'WITHDRAWAL_NOT_FOUND', sqlstate: 'PW329', description: 'No such withdrawal among yours (someone else\'s is reported the same way).' },
  { code: 'WITHDRAWAL_NOT_CANCELLABLE', sqlstate: 'PW330', description: 'The withdrawal was already sent to Revio (or is closed); only a `requested` one not yet sent can be cancelled.' },
  // Worker liveness (sql/worker/heartbeats.sql): called by the worker only
  { code: 'WORKER_ID_INVALID', sqlstate: 'PW700', description: 'A worker heartbeat needs a worker id of 1 to 200 characters.' },
  { code: 'STALE_AFTER_TOO_SHORT', sqlstate: 'PW701', description: 'release_stale_worker_locks: a heartbeat counts as stale after at least 5 seconds.' },
  // Abuse limits (src/http/rate-limit.ts, src/http/graphql/limits-plugin.ts)
  { code: 'RATE_LIMITED', httpStatus: 429, description: 'Too many requests from this address or account; retry after the Retry-After header (seconds).' },
  { code: 'QUERY_TOO_DEEP', description: 'The GraphQL operation nests deeper than GRAPHQL_MAX_DEPTH.' },
  { code: 'QUERY_TOO_COMPLEX', description: 'The GraphQL operation could return more than GRAPHQL_MAX_COMPLEXITY fields (page sizes multiply).' },
  { code: 'PAGE_SIZE_TOO_LARGE', description: 'first/last is larger than GRAPHQL_MAX_PAGE_SIZE.' },
  { code: 'INTROSPECTION_DISABLED', description: 'Schema introspection is off on this server (GRAPHQL_INTROSPECTION).' },
  { code: 'TOO_MANY_SIGN_IN_FIELDS', httpStatus: 400, description: 'The GraphQL operation has more than one sign-in field (login, register, refreshSession, changePassword, requestPasswordReset, resetPassword, verifyEmail, resendVerificationEmail); nothing ran.' },
  { code: 'TOO_MANY_MONEY_FIELDS', httpStatus: 400, description: 'The GraphQL operation has more money mutations than GRAPHQL_MAX_MONEY_FIELDS (default 5); nothing ran.' },
  { code: 'BATCH_NOT_SUPPORTED', httpStatus: 400, description: 'The body is a JSON array (a batch of operations); send one operation per request.' },
  { code: 'BAD_REQUEST', httpStatus: 400, description: 'The request body is not valid JSON (or form data) for its content type.' },
  // Voting (issue 12)
  { code: 'VOTE_COUNT_INVALID', sqlstate: 'PW601', description: 'castVotes: `count` must be from 1 to the event\'s maxVotesPerRequest.' },
  { code: 'CONTESTANT_NOT_FOUND', sqlstate: 'PW602', description: 'No such contestant in a non-draft event.' },
  { code: 'EVENT_NOT_OPEN', sqlstate: 'PW603', description: 'castVotes outside the voting window: the event is not open, or it is before opensAt or at/after closesAt.' },
  { code: 'VOTE_CAP_REACHED', sqlstate: 'PW604', description: 'These votes would take you past the event\'s daily cap per voter (UTC days).' },
  { code: 'CATEGORY_VOTE_CAP_REACHED', sqlstate: 'PW605', description: 'These votes would take you past the daily cap per voter for this category (UTC days).' },
  { code: 'VOTE_VELOCITY_EXCEEDED', sqlstate: 'PW606', description: 'Fraud rule: too many vote requests from this voter in the last minute; try again shortly.' },
  { code: 'LEADERBOARD_HIDDEN', sqlstate: 'PW607', description: 'The leaderboard (or result) is not public: the event is not open with a public leaderboard, nor published, and you are not a member.' },
  { code: 'EVENT_NOT_FOUND', sqlstate: 'PW608', description: 'No such event or category.' },
  { code: 'EVENT_STATUS_INVALID', sqlstate: 'PW609', description: 'Not allowed in the event\'s state (status goes draft → open → closed → published; opening needs a contestant; scores only while open or closed).' },
  { code: 'ORGANISATION_ACCESS_DENIED', sqlstate: 'PW610', description: 'You are not a member (or, where required, an owner) of the organisation.' },
  { code: 'EVENT_NOT_EDITABLE', sqlstate: 'PW611', description: 'Price, caps, weights and opening time change only while the event is a draft; categories and contestants are added only then.' },
  { code: 'JUDGE_NOT_INVITED', sqlstate: 'PW612', description: 'You are not an invited judge of this contestant\'s event.' },
  { code: 'SCORE_INVALID', sqlstate: 'PW613', constraints: ['judge_scores_score_check'], description: 'A judge\'s score is a whole number from 0 to 100.' },
  { code: 'VOTE_NOT_REVIEWABLE', sqlstate: 'PW614', description: 'reviewVote: no such vote, or it is not flagged.' },
  { code: 'EVENT_PAYOUT_NOT_ALLOWED', sqlstate: 'PW615', description: 'withdrawEventFunds: the event must be closed or published with no flagged vote awaiting review.' },
  { code: 'EVENT_SETTINGS_INVALID', sqlstate: 'PW616', constraints: ['events_times_check', 'events_weights_check', 'events_free_votes_check', 'events_vote_price_check', 'events_caps_check', 'events_voter_cap_check', 'events_category_cap_check', 'events_name_check', 'organisations_name_check', 'categories_name_check', 'contestants_name_check', 'contestants_bio_check'], description: 'Event settings or names out of range: closesAt after opensAt, weights 0..100 summing to 100, price 0 only with allowFreeVotes, positive caps, names 1 to 200 characters.' },
  { code: 'INVITEE_NOT_FOUND', sqlstate: 'PW617', description: 'No user has that email address (judge or member invitations).' },
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

// The registry of stable error codes. SQL raises the SQLSTATEs below (with the
// code name in a trailing comment); the API reports `extensions.code`.
// docs/errors.md is checked against this list by tests/error-codes.test.ts.

export interface ErrorCodeEntry {
  code: string;
  /** SQLSTATE raised by SQL for this code; absent for codes raised in TypeScript. */
  sqlstate?: string;
  /** HTTP status when the error ends the request before GraphQL runs. */
  httpStatus?: number;
  description: string;
}

export const ERROR_CODES: readonly ErrorCodeEntry[] = [
  // Sign-up and sign-in
  { code: 'EMAIL_INVALID', sqlstate: 'PW001', description: 'The email address is missing, too long or malformed.' },
  { code: 'PASSWORD_WEAK', sqlstate: 'PW002', description: 'Passwords must be 10 to 72 bytes long.' },
  { code: 'FULL_NAME_INVALID', sqlstate: 'PW003', description: 'Full name must be 1 to 200 characters.' },
  { code: 'EMAIL_TAKEN', sqlstate: 'PW004', description: 'An account with this email address already exists.' },
  { code: 'INVALID_CREDENTIALS', description: 'Email or password is wrong (deliberately not saying which).' },
  { code: 'ACCOUNT_LOCKED', description: '5 failed sign-ins within 15 minutes; retry after `extensions.retryAt`.' },
  { code: 'REFRESH_TOKEN_INVALID', description: 'The refresh token is unknown, expired, or its session has ended.' },
  { code: 'REFRESH_TOKEN_REUSED', description: 'A rotated refresh token was presented again; the whole session was revoked.' },
  // Transport
  { code: 'TOKEN_INVALID', httpStatus: 401, description: 'The bearer token failed verification (signature, algorithm, issuer, audience or claims).' },
  { code: 'TOKEN_EXPIRED', httpStatus: 401, description: 'The bearer token has expired; call refreshSession.' },
  { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413, description: 'The request body exceeds the size limit.' },
  { code: 'NOT_FOUND', httpStatus: 404, description: 'No such route.' },
  // Database-level refusals that reach clients
  { code: 'PERMISSION_DENIED', sqlstate: '42501', description: 'The caller may not do this (privilege or row-level security).' },
  { code: 'INTERNAL_ERROR', httpStatus: 500, description: 'Unexpected; the message carries an error id that is in the server log.' },
];

const bySqlstate = new Map(ERROR_CODES.filter((e) => e.sqlstate).map((e) => [e.sqlstate!, e]));

export function codeForSqlstate(sqlstate: unknown): string | undefined {
  return typeof sqlstate === 'string' ? bySqlstate.get(sqlstate)?.code : undefined;
}

// register / login / refreshSession / logout / changePassword. The SQL
// functions decide (and record) everything; this plugin only turns their outcome into signed tokens
// or a coded error. Access tokens must be signed here because the key is an
// asymmetric one that never enters the database.
import { sideEffectWithPgClient } from 'postgraphile/@dataplan/pg';
import { lambda, SafeError, type Step } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { roleForUser, signAccessToken, type TokenSettings } from '../../auth/tokens.ts';

interface AuthRow {
  outcome: 'ok' | 'invalid' | 'locked' | 'reused' | 'expired';
  user_id: string;
  email: string;
  full_name: string;
  role: string;
  session_id: string;
  refresh_token: string;
  retry_at: Date | null;
}

type Failures = Partial<Record<AuthRow['outcome'], { code: string; message: string }>>;

const SIGN_IN_FAILURES: Failures = {
  invalid: { code: 'INVALID_CREDENTIALS', message: 'Email or password is incorrect.' },
  locked: { code: 'ACCOUNT_LOCKED', message: 'Too many failed sign-in attempts; try again later.' },
};
const REFRESH_FAILURES: Failures = {
  invalid: { code: 'REFRESH_TOKEN_INVALID', message: 'The refresh token is not valid; sign in again.' },
  reused: { code: 'REFRESH_TOKEN_REUSED', message: 'This refresh token was already used; the session has been ended for safety.' },
  expired: { code: 'SESSION_EXPIRED', message: 'This session has reached its maximum age; sign in again.' },
};
const CHANGE_PASSWORD_FAILURES: Failures = {
  invalid: { code: 'CURRENT_PASSWORD_INCORRECT', message: 'The current password is incorrect.' },
  locked: SIGN_IN_FAILURES.locked,
};

function failure(row: AuthRow, failures: Failures): SafeError {
  const known = failures[row.outcome] ?? { code: 'INTERNAL_ERROR', message: 'Unexpected sign-in outcome.' };
  return new SafeError(known.message, { code: known.code, ...(row.retry_at ? { retryAt: row.retry_at.toISOString() } : {}) });
}

async function toPayload(tokens: TokenSettings, row: AuthRow, failures: Failures) {
  if (row.outcome !== 'ok') throw failure(row, failures);
  const access = await signAccessToken(tokens, {
    userId: row.user_id,
    role: roleForUser(row.role),
    sessionId: row.session_id,
  });
  return {
    accessToken: access.token,
    refreshToken: row.refresh_token,
    accessTokenExpiresAt: access.expiresAt.toISOString(),
    user: { rowId: row.user_id, email: row.email, fullName: row.full_name },
  };
}

export function makeAuthPlugin(tokens: TokenSettings) {
  return extendSchema((build) => {
    const executor = build.input.pgRegistry.pgExecutors.main;

    /** Calls app_private.<fn>(...) with the caller's pgSettings and returns its auth_result row. */
    function callAuthFunction(fn: string, $input: Step, args: (input: any) => unknown[]) {
      return sideEffectWithPgClient(executor, $input, async (client, input) => {
        const values = args(input);
        const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
        const { rows } = await client.query<AuthRow>({ text: `select * from app_private.${fn}(${placeholders})`, values });
        return rows[0];
      });
    }
    const payload = ($row: Step<AuthRow>, failures = SIGN_IN_FAILURES) =>
      lambda($row, (row) => toPayload(tokens, row, failures));

    return {
      typeDefs: gql`
        input RegisterInput {
          email: String!
          password: String!
          fullName: String!
        }
        input LoginInput {
          email: String!
          password: String!
        }
        input RefreshSessionInput {
          refreshToken: String!
        }
        input LogoutInput {
          refreshToken: String!
        }
        input ChangePasswordInput {
          currentPassword: String!
          newPassword: String!
        }
        """
        The user a session belongs to.
        """
        type SessionUser {
          rowId: UUID!
          email: String!
          fullName: String!
        }
        """
        A signed-in session: a 15-minute access token (send as "Authorization: Bearer")
        and a single-use refresh token for refreshSession.
        """
        type AuthPayload {
          accessToken: String!
          refreshToken: String!
          accessTokenExpiresAt: Datetime!
          user: SessionUser!
        }
        type LogoutPayload {
          success: Boolean!
        }
        extend type Mutation {
          "Create an account and sign in."
          register(input: RegisterInput!): AuthPayload
          "Sign in. Five failures for one email within 15 minutes lock it (ACCOUNT_LOCKED)."
          login(input: LoginInput!): AuthPayload
          "Exchange a refresh token for new tokens; the old refresh token stops working."
          refreshSession(input: RefreshSessionInput!): AuthPayload
          "End the session the refresh token belongs to."
          logout(input: LogoutInput!): LogoutPayload
          "Set a new password (the current one is required). Every other session of yours ends; this one stays."
          changePassword(input: ChangePasswordInput!): LogoutPayload
        }
      `,
      objects: {
        Mutation: {
          plans: {
            register(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              return payload(callAuthFunction('register', $input, (i) => [i.email, i.password, i.fullName]));
            },
            login(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              return payload(callAuthFunction('login', $input, (i) => [i.email, i.password]));
            },
            refreshSession(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              return payload(callAuthFunction('refresh_session', $input, (i) => [i.refreshToken]), REFRESH_FAILURES);
            },
            changePassword(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              const $row = callAuthFunction('change_password', $input, (i) => [i.currentPassword, i.newPassword]);
              return lambda($row, (row) => {
                if (row.outcome !== 'ok') throw failure(row, CHANGE_PASSWORD_FAILURES);
                return { success: true };
              });
            },
            logout(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              const $done = sideEffectWithPgClient(executor, $input, async (client, input: any) => {
                await client.query({ text: 'select app_private.logout($1)', values: [input.refreshToken] });
                return { success: true };
              });
              return $done;
            },
          },
        },
      },
    };
  }, 'PgWalletAuthPlugin');
}

// Direct SQL as a given role, the way an attacker with a stolen connection or
// a careless script would try it. Each call runs in its own transaction.
import pg from 'pg';
import { inject } from 'vitest';

export type RoleName = 'app_anonymous' | 'app_user' | 'app_admin' | 'app_auditor' | 'app_owner';

export interface AsRole {
  role: RoleName;
  /** JWT claims to expose to SQL, as the API would. */
  userId?: string;
  sessionId?: string;
  /** The role claim the API passes as request.jwt.claims.role; tests may forge it. */
  roleClaim?: string;
}

/**
 * Runs `fn` inside a transaction that has switched to `as.role`. API roles are
 * reached through the authenticator (as in production); app_auditor, which the
 * API cannot become, through the superuser; app_owner logs in as itself.
 */
export async function withRole<T>(as: AsRole, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = as.role === 'app_owner' ? inject('ownerUrl') : as.role === 'app_auditor' ? inject('rootUrl') : inject('authUrl');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    if (as.role !== 'app_owner') await client.query(`set local role ${as.role}`);
    if (as.userId) {
      await client.query(`select set_config('request.jwt.claims.sub', $1, true), set_config('request.jwt.claims.sid', $2, true)`, [
        as.userId,
        as.sessionId ?? '',
      ]);
    }
    if (as.roleClaim) await client.query(`select set_config('request.jwt.claims.role', $1, true)`, [as.roleClaim]);
    return await fn(client);
  } finally {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  }
}

/** The SQLSTATE a statement fails with, or 'ok'. */
export async function sqlstateOf(as: AsRole, text: string, values: unknown[] = []): Promise<string> {
  return withRole(as, async (client) => {
    try {
      await client.query(text, values);
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? 'unknown';
    }
  });
}

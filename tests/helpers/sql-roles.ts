// Like helpers/sql.ts's withRole, with the role claim the API also passes
// (request.jwt.claims.role), so tests can forge it in direct SQL.
import type pg from 'pg';
import { withRole as baseWithRole, type AsRole as BaseAsRole } from './sql.ts';

export interface AsRole extends BaseAsRole {
  roleClaim?: string;
}

export function withRole<T>(as: AsRole, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return baseWithRole(as, async (client) => {
    if (as.roleClaim) await client.query(`select set_config('request.jwt.claims.role', $1, true)`, [as.roleClaim]);
    return fn(client);
  });
}

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

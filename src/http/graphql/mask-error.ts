// What GraphQL clients see when something fails. Expected failures (SafeError
// from our plugins, registered SQLSTATEs from SQL) keep their message and get
// a stable `extensions.code`; anything else is replaced by an error id and
// logged, so internals (SQL, constraint names, values) never leak.
import { randomUUID } from 'node:crypto';
import { isSafeError } from 'postgraphile/grafast';
import { GraphQLError } from 'postgraphile/graphql';
import type { Logger } from 'pino';
import { describeDatabaseError } from '../../errors.ts';

interface PgErrorLike {
  code?: string;
  message: string;
  table?: string;
  constraint?: string;
}

export function makeMaskError(logger: Logger) {
  return function maskError(error: GraphQLError): GraphQLError {
    const original = error.originalError as (Error & PgErrorLike) | undefined;
    const rebuild = (message: string, extensions: Record<string, unknown>) =>
      new GraphQLError(message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions });

    // Parse/validation errors and errors already shaped for clients.
    if (!original || original instanceof GraphQLError) return error;
    if (isSafeError(original)) return rebuild(original.message, { ...(original.extensions ?? {}) });

    const expected = describeDatabaseError(original);
    if (expected) return rebuild(expected.message, { code: expected.code });

    const errorId = randomUUID();
    // Log the shape of the failure, never pg's `detail`, which can quote row values.
    logger.error(
      { errorId, path: error.path, sqlstate: original.code, table: original.table, constraint: original.constraint, err: { message: original.message, stack: original.stack } },
      'unexpected error in GraphQL operation',
    );
    return rebuild(`An unexpected error occurred (error id ${errorId}).`, { code: 'INTERNAL_ERROR', errorId });
  };
}

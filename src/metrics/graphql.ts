// GraphQL operation metrics, as a PostGraphile (grafast/grafserv) plugin:
// - grafast `execute` middleware: every operation that runs is counted with
//   its outcome (success, or error when the result carries errors) and timed;
// - operations that never execute (unparsable, invalid against the schema,
//   bad token, too large) are counted as `rejected` by graphqlRejectedCounter,
//   an Express hook on /graphql.
//
// The `operation` label is the operation's name, or for an anonymous one its
// first root field (schema-bounded). Names are clients' choices, so only the
// first MAX_OPERATION_NAMES distinct ones get their own label; later ones
// count as `other`.
import type {} from 'postgraphile';
import type { NextFunction, Request, Response } from 'express';
import { Kind, type DocumentNode, type OperationDefinitionNode } from 'postgraphile/graphql';
import type { Metrics } from './registry.ts';

export const MAX_OPERATION_NAMES = 200;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const COUNTED = Symbol('pgwallet.graphqlCounted');
const OPERATION_NAME = Symbol('pgwallet.graphqlOperationName');

type Tagged = Request & { [COUNTED]?: boolean; [OPERATION_NAME]?: string };

export function makeOperationLabeller(max = MAX_OPERATION_NAMES) {
  const seen = new Set<string>();
  return (name: string | undefined | null): string => {
    if (!name || !NAME.test(name)) return name ? 'other' : 'anonymous';
    if (seen.has(name)) return name;
    if (seen.size >= max) return 'other';
    seen.add(name);
    return name;
  };
}

function operationOf(document: DocumentNode, operationName: string | null | undefined): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  return operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
}

function describe(document: DocumentNode, operationName: string | null | undefined) {
  const op = operationOf(document, operationName);
  if (!op) return { name: operationName ?? undefined, type: 'unknown' };
  if (op.name) return { name: op.name.value, type: op.operation };
  const first = op.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  return { name: first && first.kind === Kind.FIELD ? first.name.value : undefined, type: op.operation };
}

function hasErrors(result: unknown): boolean {
  return typeof result === 'object' && result !== null && Array.isArray((result as { errors?: unknown[] }).errors) && (result as { errors: unknown[] }).errors.length > 0;
}

export function makeGraphqlMetricsPlugin(metrics: Metrics): GraphileConfig.Plugin {
  const label = makeOperationLabeller();
  return {
    name: 'PgWalletMetricsPlugin',
    version: '0.0.0',
    grafserv: {
      middleware: {
        processGraphQLRequestBody(next, event) {
          // Websocket operations (subscriptions) come without an HTTP request.
          const req = (event.request?.requestContext as { expressv4?: { req?: Tagged } } | undefined)?.expressv4?.req;
          const name = (event.body as { operationName?: unknown }).operationName;
          if (req && typeof name === 'string') req[OPERATION_NAME] = name;
          return next();
        },
      },
    },
    grafast: {
      middleware: {
        execute(next, event) {
          const args = event.args;
          const req = (args.requestContext as { expressv4?: { req?: Tagged } } | undefined)?.expressv4?.req;
          const { name, type } = describe(args.document, args.operationName);
          const operation = label(name);
          if (req) req[COUNTED] = true;
          const end = metrics.graphqlDuration.startTimer({ operation, type });
          const record = (outcome: string) => {
            end();
            metrics.graphqlOperations.inc({ operation, type, outcome });
          };
          let result;
          try {
            result = next();
          } catch (error) {
            record('error');
            throw error;
          }
          if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
            return (result as Promise<unknown>).then(
              (value) => {
                record(hasErrors(value) ? 'error' : 'success');
                return value;
              },
              (error: unknown) => {
                record('error');
                throw error;
              },
            ) as typeof result;
          }
          record(hasErrors(result) ? 'error' : 'success');
          return result;
        },
      },
    },
  };
}

/** Counts POST /graphql requests that never reached execution as `rejected`. */
export function graphqlRejectedCounter(metrics: Metrics) {
  const label = makeOperationLabeller();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'POST') {
      res.once('finish', () => {
        const tagged = req as Tagged;
        if (tagged[COUNTED]) return;
        metrics.graphqlOperations.inc({ operation: label(tagged[OPERATION_NAME]), type: 'unknown', outcome: 'rejected' });
      });
    }
    next();
  };
}

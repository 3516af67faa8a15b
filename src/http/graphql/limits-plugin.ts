// GraphQL validation limits, added to grafserv's validation rules (results are
// cached per query text): depth, a complexity estimate, the page-size cap for
// literal first/last, and no introspection unless GRAPHQL_INTROSPECTION allows it.
// first/last given as variables are checked before GraphQL (src/http/abuse.ts).
import type {} from 'postgraphile';
import {
  GraphQLError,
  Kind,
  type FieldNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'postgraphile/graphql';
import { chargedFields } from '../abuse.ts';
import type { ApiLimits } from '../limits-config.ts';
import { verifyExecution } from '../operation-limits.ts';

type Limits = Pick<ApiLimits, 'maxDepth' | 'maxComplexity' | 'maxPageSize' | 'introspection'> & Partial<Pick<ApiLimits, 'maxMoneyFields'>>;

function pageSizeOf(field: FieldNode, limits: Limits, context: ValidationContext): number {
  let size = 1;
  for (const argument of field.arguments ?? []) {
    if (argument.name.value !== 'first' && argument.name.value !== 'last') continue;
    if (argument.value.kind === Kind.INT) {
      const value = Number(argument.value.value);
      if (limits.maxPageSize > 0 && value > limits.maxPageSize) {
        context.reportError(
          new GraphQLError(`${argument.name.value} may be at most ${limits.maxPageSize} (got ${value}).`, {
            nodes: [argument],
            extensions: { code: 'PAGE_SIZE_TOO_LARGE' },
          }),
        );
      }
      size = Math.max(size, value);
    } else if (argument.value.kind === Kind.VARIABLE) {
      size = Math.max(size, limits.maxPageSize || 1);
    }
  }
  return size;
}

/**
 * Depth counts nested fields (top-level fields are depth 1). Complexity sums
 * every field times the page sizes (first/last; a variable counts as the cap)
 * of the lists around it. Lists without first/last count once: they are
 * bounded by row-level security to the caller's own rows.
 */
export function makeLimitsRule(limits: Limits): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      let maxDepth = 0;
      let complexity = 0;
      const walk = (selectionSet: SelectionSetNode, depth: number, multiplier: number, fragments: Set<string>) => {
        for (const selection of selectionSet.selections) {
          if (selection.kind === Kind.FIELD) {
            if (selection.name.value.startsWith('__')) continue; // introspection and __typename
            maxDepth = Math.max(maxDepth, depth);
            complexity += multiplier;
            if (selection.selectionSet && maxDepth <= limits.maxDepth + 1) {
              walk(selection.selectionSet, depth + 1, multiplier * pageSizeOf(selection, limits, context), fragments);
            }
          } else if (selection.kind === Kind.INLINE_FRAGMENT) {
            walk(selection.selectionSet, depth, multiplier, fragments);
          } else {
            const name = selection.name.value;
            const fragment = context.getFragment(name);
            if (fragment && !fragments.has(name)) walk(fragment.selectionSet, depth, multiplier, new Set([...fragments, name]));
          }
        }
      };
      walk(operation.selectionSet, 1, 1, new Set());
      if (limits.maxDepth > 0 && maxDepth > limits.maxDepth) {
        context.reportError(
          new GraphQLError(`The operation is nested too deeply (more than ${limits.maxDepth} levels).`, {
            nodes: [operation],
            extensions: { code: 'QUERY_TOO_DEEP' },
          }),
        );
      } else if (limits.maxComplexity > 0 && complexity > limits.maxComplexity) {
        context.reportError(
          new GraphQLError(`The operation is too complex (${complexity} > ${limits.maxComplexity}); ask for smaller pages or fewer fields.`, {
            nodes: [operation],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
      }
    },
  });
}

// __schema and __type are introspection; __typename stays allowed.
const noIntrospection: ValidationRule = (context) => ({
  Field(node) {
    if (node.name.value === '__schema' || node.name.value === '__type') {
      context.reportError(new GraphQLError('Introspection is disabled on this server.', { nodes: [node], extensions: { code: 'INTROSPECTION_DISABLED' } }));
    }
  },
});

export function makeGraphqlLimitsPlugin(limits: Limits): GraphileConfig.Plugin {
  const maxMoneyFields = limits.maxMoneyFields ?? 5;
  return {
    name: 'PgWalletGraphqlLimitsPlugin',
    version: '1.0.0',
    grafast: {
      middleware: {
        // The last word on per-operation limits: the validated document and the
        // operation grafserv is about to run must have been classified and
        // charged by the Express step (src/http/operation-limits.ts).
        execute(next, event) {
          const { document, operationName, requestContext } = event.args;
          const req = (requestContext as { expressv4?: { req?: unknown } } | undefined)?.expressv4?.req;
          const refused = verifyExecution(document, operationName, chargedFields(req), maxMoneyFields);
          if (refused) return { errors: [new GraphQLError(refused.message, { extensions: { code: refused.code } })] };
          return next();
        },
      },
    },
    grafserv: {
      middleware: {
        setPreset(next, event) {
          event.validationRules.push(makeLimitsRule(limits));
          if (!limits.introspection) event.validationRules.push(noIntrospection);
          return next();
        },
      },
    },
  };
}

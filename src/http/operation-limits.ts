// Per-operation limits (issue 9 §2, docs/security.md "Limits per operation").
// A request is classified on its parsed GraphQL document, never on its text:
// the root fields of the operation that will run, with aliases, inline
// fragments and fragment spreads resolved. Each sign-in and money field counts
// against its rate-limit bucket, a request may carry at most one sign-in field
// and at most GRAPHQL_MAX_MONEY_FIELDS money fields, and IPv6 clients share
// their /64's buckets.
//
// Express classifies before GraphQL (one cached parse per distinct document)
// so that an over-limit request is answered 400 and nothing runs, and so the
// rate-limit SQL call stays one per request. The grafast execute middleware
// (graphql/limits-plugin.ts) classifies again, on the validated document
// grafserv is about to execute, and refuses anything the Express step did not
// see and charge (verifyExecution).
import { isIPv4, isIPv6 } from 'node:net';
import { Kind, parse, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'postgraphile/graphql';

/** Fields that check a password, mint a session or send account email: at most one per request. */
export const SIGN_IN_FIELDS: ReadonlySet<string> = new Set([
  'login',
  'register',
  'refreshSession',
  'changePassword',
  'requestPasswordReset',
  'resetPassword',
  'verifyEmail',
  'resendVerificationEmail',
]);

/** Fields that move money, queue a Revio job or change where money can go. */
export const MONEY_FIELDS: ReadonlySet<string> = new Set([
  'transfer',
  'createDeposit',
  'requestWithdrawal',
  'castVotes',
  'withdrawEventFunds',
  'reviewVote', // rejecting a flagged vote refunds it
  'purchase',
  'purchaseByCard',
  'reserveItems',
  'confirmReservation',
  'refundOrder',
  'merchantPayout',
  'refundDeposit',
  'cancelDeposit', // queues a Revio job
  'cancelWithdrawal',
  'addBankAccount',
  'deleteMyAccount',
  'adminRequestAdjustment',
  'adminDecideAdjustment',
]);

export interface OperationCounts {
  signIn: number;
  money: number;
}

export const NO_FIELDS: OperationCounts = Object.freeze({ signIn: 0, money: 0 });

/** graphql-js's choice: the operation named operationName, else the only one; undefined when none would run. */
export function operationToRun(document: DocumentNode, operationName?: string | null): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operationName) return operations.find((o) => o.name?.value === operationName);
  return operations.length === 1 ? operations[0] : undefined;
}

function countOperation(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): OperationCounts {
  // Fields with the same response key (alias or name) are merged by GraphQL
  // and run once, so distinct response keys are what run.
  const signIn = new Set<string>();
  const money = new Set<string>();
  const walk = (selectionSet: SelectionSetNode, seen: Set<string>) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        if (SIGN_IN_FIELDS.has(selection.name.value)) signIn.add(key);
        if (MONEY_FIELDS.has(selection.name.value)) money.add(key);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (fragment && !seen.has(name)) walk(fragment.selectionSet, new Set([...seen, name]));
      }
    }
  };
  walk(operation.selectionSet, new Set());
  return { signIn: signIn.size, money: money.size };
}

/**
 * The sign-in and money fields of the operation that will run. When no single
 * operation would run (several unnamed, or an unknown name) GraphQL refuses the
 * request; the answer is then the largest count of any operation, so a
 * classification error can only over-count.
 */
export function countFields(document: DocumentNode, operationName?: string | null): OperationCounts {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const chosen = operationToRun(document, operationName);
  const candidates = chosen
    ? [chosen]
    : document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  let counts: OperationCounts = NO_FIELDS;
  for (const operation of candidates) {
    const c = countOperation(operation, fragments);
    counts = { signIn: Math.max(counts.signIn, c.signIn), money: Math.max(counts.money, c.money) };
  }
  return counts;
}

/** Parses once per distinct (document, operation name); clients repeat their documents. */
export function makeRequestClassifier(maxEntries = 500) {
  const cache = new Map<string, OperationCounts>();
  return (query: string, operationName?: string | null): OperationCounts => {
    if (!query) return NO_FIELDS;
    const key = `${operationName ?? ''}\u0000${query}`;
    const hit = cache.get(key);
    if (hit) return hit;
    let counts: OperationCounts;
    try {
      counts = countFields(parse(query), operationName);
    } catch {
      counts = NO_FIELDS; // unparsable: grafserv refuses it and nothing runs
    }
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, counts);
    return counts;
  };
}

export type CapViolation = { code: 'TOO_MANY_SIGN_IN_FIELDS' | 'TOO_MANY_MONEY_FIELDS'; message: string };

/** One sign-in field, and at most maxMoneyFields money fields, per request. */
export function capViolation(counts: OperationCounts, maxMoneyFields: number): CapViolation | undefined {
  if (counts.signIn > 1) {
    return { code: 'TOO_MANY_SIGN_IN_FIELDS', message: `An operation may contain at most one sign-in field (got ${counts.signIn}); nothing was run.` };
  }
  if (counts.money > maxMoneyFields) {
    return {
      code: 'TOO_MANY_MONEY_FIELDS',
      message: `An operation may contain at most ${maxMoneyFields} money mutations (got ${counts.money}); nothing was run.`,
    };
  }
  return undefined;
}

/**
 * At execution time, on the validated document: a violation when the operation
 * breaks a cap, or carries more sign-in or money fields than the request was
 * charged for (e.g. a body the Express step could not read).
 */
export function verifyExecution(
  document: DocumentNode,
  operationName: string | null | undefined,
  charged: OperationCounts | undefined,
  maxMoneyFields: number,
): CapViolation | { code: 'RATE_LIMITED'; message: string } | undefined {
  const counts = countFields(document, operationName);
  const cap = capViolation(counts, maxMoneyFields);
  if (cap) return cap;
  const paid = charged ?? NO_FIELDS;
  if (counts.signIn > paid.signIn || counts.money > paid.money) {
    return { code: 'RATE_LIMITED', message: 'The operation was not counted against its rate limits, so it was not run.' };
  }
  return undefined;
}

function expandIPv6(address: string): string[] | undefined {
  let text = address.split('%')[0]!; // zone id
  // A trailing dotted IPv4 part is two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -dotted[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups];
  return groups.length === 8 ? groups.map((g) => parseInt(g, 16).toString(16)) : undefined;
}

/**
 * The rate-limit key of a client address: IPv4 as is (IPv4-mapped IPv6 too),
 * IPv6 by its /64, since one subscriber usually gets a whole /64 and could
 * otherwise rotate through 2^64 addresses.
 */
export function clientKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(ip)) return ip;
  const groups = expandIPv6(ip);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : ip;
}

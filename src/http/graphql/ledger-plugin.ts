// The few things about the wallet API that SQL cannot say to PostGraphile:
// - Wallet.transactions lists newest first by default and can be filtered on
//   a time range (condition.occurredFrom / occurredBefore) besides kind;
// - a BigInt amount that is not a whole number in bigint range (e.g. "1.5")
//   fails with AMOUNT_INVALID rather than a database cast error.
// Everything else (who may see what, every other validation) is in sql/ledger.
import type {} from 'postgraphile';
import { TYPES, sqlValueWithCodec } from 'postgraphile/@dataplan/pg';
import { SafeError, sideEffect } from 'postgraphile/grafast';
import { addPgTableCondition, wrapPlans } from 'postgraphile/utils';

const INT8_MAX = 9223372036854775807n;

/** Throws AMOUNT_INVALID unless `value` is a whole number that fits a bigint. */
export function assertBigIntAmount(value: unknown): void {
  if (value === null || value === undefined) return; // SQL reports a missing amount
  const text = String(value).trim();
  if (!/^-?\d{1,19}$/.test(text) || BigInt(text) > INT8_MAX || BigInt(text) < -INT8_MAX - 1n) {
    throw new SafeError('The amount must be a whole number of minor units (cents), as a string of digits.', { code: 'AMOUNT_INVALID' });
  }
}

const validateTransferAmount = wrapPlans(
  {
    Mutation: {
      transfer(plan, _$source, fieldArgs) {
        // Created before the function call's step, so grafast runs it first and
        // the call never happens when it throws.
        sideEffect(fieldArgs.getRaw(['input', 'amount']), assertBigIntAmount);
        return plan();
      },
    },
  },
  { name: 'PgWalletTransferAmountPlugin' },
);

function timeCondition(fieldName: string, operator: '>=' | '<', description: string) {
  return addPgTableCondition({ schemaName: 'app_public', tableName: 'wallet_transactions' }, fieldName, (build) => ({
    description,
    type: build.getTypeByName('Datetime') as import('postgraphile/graphql').GraphQLInputType,
    apply(condition: any, value: unknown) {
      if (value == null) return;
      const { sql } = build;
      const time = sqlValueWithCodec(value, TYPES.timestamptz);
      condition.where(operator === '>=' ? sql`${condition.alias}.occurred_at >= ${time}` : sql`${condition.alias}.occurred_at < ${time}`);
    },
  }));
}

const TransactionsNewestFirstPlugin: GraphileConfig.Plugin = {
  name: 'PgWalletTransactionsNewestFirstPlugin',
  version: '0.0.0',
  after: ['PgConnectionArgOrderByDefaultValuePlugin'],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { Self, scope } = context;
        if (Self.name !== 'Wallet' || scope.fieldName !== 'transactions' || scope.argName !== 'orderBy') return arg;
        const orderBy = build.getTypeByName('WalletTransactionOrderBy') as import('postgraphile/graphql').GraphQLEnumType | undefined;
        const newestFirst = orderBy?.getValues().find((value) => value.name === 'PRIMARY_KEY_DESC');
        if (!newestFirst) throw new Error('WalletTransactionOrderBy.PRIMARY_KEY_DESC is missing; did the wallet_transactions view change?');
        return { ...arg, defaultValue: [newestFirst.value], description: 'Newest first unless you say otherwise.' };
      },
    },
  },
};

export const ledgerPlugins: GraphileConfig.Plugin[] = [
  validateTransferAmount,
  timeCondition('occurredFrom', '>=', 'Only movements at or after this time.'),
  timeCondition('occurredBefore', '<', 'Only movements before this time.'),
  TransactionsNewestFirstPlugin,
];

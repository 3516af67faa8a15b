// The parts of the deposit and withdrawal API that SQL cannot do alone:
// - addBankAccount encrypts the account number here (AES-256-GCM, key from
//   BANK_ACCOUNT_ENCRYPTION_KEY) so that the database only ever receives the
//   ciphertext and the last 4 digits (sql/payments/bank_accounts.sql);
// - createDeposit and requestWithdrawal refuse an amount that is not a whole
//   number in bigint range with AMOUNT_INVALID, as transfer does.
// Limits, ownership and every other rule are in sql/payments.
import type {} from 'postgraphile';
import { sideEffectWithPgClient } from 'postgraphile/@dataplan/pg';
import { object, SafeError, sideEffect } from 'postgraphile/grafast';
import { extendSchema, gql, wrapPlans } from 'postgraphile/utils';
import { encryptAccountNumber, type BankAccountKey } from '../../payments/bank-crypto.ts';
import { assertBigIntAmount } from './ledger-plugin.ts';

export interface PaymentsPluginOptions {
  /** Without it addBankAccount fails (as an internal error): the server is misconfigured. */
  bankAccountKey?: BankAccountKey;
}

interface AddBankAccountInput {
  accountHolder: string;
  bankName: string;
  branchCode: string;
  accountNumber: string;
  accountType: string;
}

const validateAmounts = wrapPlans(
  {
    Mutation: {
      createDeposit(plan, _$source, fieldArgs) {
        sideEffect(fieldArgs.getRaw(['input', 'amount']), assertBigIntAmount);
        return plan();
      },
      requestWithdrawal(plan, _$source, fieldArgs) {
        sideEffect(fieldArgs.getRaw(['input', 'amount']), assertBigIntAmount);
        return plan();
      },
    },
  },
  { name: 'PgWalletPaymentAmountsPlugin' },
);

/** Digits only, spaces and dashes allowed between them; 6 to 20 digits. */
export function normaliseAccountNumber(raw: unknown): string {
  const digits = typeof raw === 'string' ? raw.replace(/[\s-]/g, '') : '';
  if (!/^\d{6,20}$/.test(digits)) {
    throw new SafeError('The account number must be 6 to 20 digits.', { code: 'BANK_ACCOUNT_INVALID' });
  }
  return digits;
}

function addBankAccountPlugin(options: PaymentsPluginOptions) {
  return extendSchema((build) => {
    const executor = build.input.pgRegistry.pgExecutors.main;
    const bankAccounts = build.input.pgRegistry.pgResources.bank_accounts;
    return {
      typeDefs: gql`
        input AddBankAccountInput {
          accountHolder: String!
          bankName: String!
          "South African universal or branch code: 6 digits."
          branchCode: String!
          "6 to 20 digits (spaces and dashes are ignored). Stored encrypted; only the last 4 digits are ever shown."
          accountNumber: String!
          accountType: BankAccountType!
        }
        type AddBankAccountPayload {
          result: BankAccount
        }
        extend type Mutation {
          "Saves a bank account to withdraw to. The account number is encrypted at rest; the API shows only its last 4 digits."
          addBankAccount(input: AddBankAccountInput!): AddBankAccountPayload
        }
      `,
      objects: {
        Mutation: {
          plans: {
            addBankAccount(_$root, fieldArgs) {
              const $input = fieldArgs.getRaw('input');
              const $id = sideEffectWithPgClient(executor, $input, async (client, input: AddBankAccountInput) => {
                const accountNumber = normaliseAccountNumber(input.accountNumber);
                if (!options.bankAccountKey) throw new Error('BANK_ACCOUNT_ENCRYPTION_KEY is not configured for this API.');
                const { rows: who } = await client.query<{ id: string | null }>({ text: 'select app_public.current_user_id() as id' });
                if (!who[0]?.id) throw new SafeError('Sign in to add a bank account.', { code: 'PERMISSION_DENIED' });
                const ciphertext = encryptAccountNumber(options.bankAccountKey, who[0].id, accountNumber);
                const { rows } = await client.query<{ id: string }>({
                  text: 'select app_private.add_bank_account($1, $2, $3, $4, $5, $6) as id',
                  values: [input.accountHolder, input.bankName, input.branchCode, input.accountType, accountNumber.slice(-4), ciphertext],
                });
                return rows[0].id;
              });
              return object({ result: bankAccounts.get({ id: $id }) });
            },
          },
        },
      },
    };
  }, 'PgWalletAddBankAccountPlugin');
}

export function makePaymentsPlugins(options: PaymentsPluginOptions): GraphileConfig.Plugin[] {
  return [validateAmounts, addBankAccountPlugin(options)];
}

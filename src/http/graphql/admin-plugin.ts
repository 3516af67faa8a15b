// The maker-checker mutations (issue 9 §1): balance adjustments and admin
// role changes. SQL decides everything (sql/admin/maker_checker.sql); a
// refusal there is *returned* with its code after being written to the admin
// log, so the log line commits. This plugin runs the SQL call in its own
// transaction, and only once it has committed turns a refusal into a coded
// GraphQL error.
import type {} from 'postgraphile';
import { sideEffectWithPgClient } from 'postgraphile/@dataplan/pg';
import { lambda, object, SafeError, type Step } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import { assertBigIntAmount } from './ledger-plugin.ts';

interface Outcome {
  code: string | null;
  message: string | null;
  id: string | null;
}

/** The outcome's id, or the refusal as a SafeError (the transaction has already committed). */
export function idOrRefusal(outcome: Outcome): string {
  if (outcome.code) throw new SafeError(outcome.message ?? 'Refused.', { code: outcome.code });
  return outcome.id as string;
}

export const adminPlugin = extendSchema((build) => {
  const executor = build.input.pgRegistry.pgExecutors.main;
  const { balance_adjustments: adjustments, role_change_requests: roleChanges } = build.input.pgRegistry.pgResources;

  /** select * from app_private.<fn>(args) as the caller; returns its admin_outcome. */
  function call($input: Step, fn: string, args: (input: any) => unknown[]) {
    const $outcome = sideEffectWithPgClient(executor, $input, async (client, input) => {
      const values = args(input);
      const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
      const { rows } = await client.query<Outcome>({ text: `select * from app_private.${fn}(${placeholders})`, values });
      return rows[0];
    });
    return lambda($outcome, idOrRefusal);
  }

  return {
    typeDefs: gql`
      input AdminRequestAdjustmentInput {
        walletId: UUID!
        "Minor units: positive credits the wallet, negative debits it."
        amount: BigInt!
        reason: String!
      }
      type AdminRequestAdjustmentPayload {
        result: BalanceAdjustment
      }
      input AdminDecideAdjustmentInput {
        adjustmentId: UUID!
        approve: Boolean!
        note: String!
      }
      type AdminDecideAdjustmentPayload {
        result: BalanceAdjustment
      }
      input AdminRequestRoleChangeInput {
        userId: UUID!
        role: UserRole!
        reason: String!
      }
      type AdminRequestRoleChangePayload {
        result: RoleChangeRequest
      }
      input AdminDecideRoleChangeInput {
        requestId: UUID!
        approve: Boolean!
        note: String!
      }
      type AdminDecideRoleChangePayload {
        result: RoleChangeRequest
      }
      extend type Mutation {
        "Admins only: ask for a manual balance adjustment to someone else's wallet; another admin must approve it. Logged (refusals too)."
        adminRequestAdjustment(input: AdminRequestAdjustmentInput!): AdminRequestAdjustmentPayload
        "Admins only: approve (posts the entry) or reject a pending adjustment. Not the requester, not the wallet's owner, not an admin tied to the requester by a recent role change."
        adminDecideAdjustment(input: AdminDecideAdjustmentInput!): AdminDecideAdjustmentPayload
        "Admins only: ask for a user to become an admin or a plain user (never yourself); another admin must approve it."
        adminRequestRoleChange(input: AdminRequestRoleChangeInput!): AdminRequestRoleChangePayload
        "Admins only: approve (the role changes and their sessions end) or reject a pending role change. Not the requester, not the person concerned, not an admin tied to the requester by a recent role change."
        adminDecideRoleChange(input: AdminDecideRoleChangeInput!): AdminDecideRoleChangePayload
      }
    `,
    objects: {
      Mutation: {
        plans: {
          adminRequestAdjustment(_$root, fieldArgs) {
            const $id = call(fieldArgs.getRaw('input'), 'admin_request_adjustment', (i) => {
              assertBigIntAmount(i.amount);
              return [i.walletId, i.amount, i.reason];
            });
            return object({ result: adjustments.get({ id: $id }) });
          },
          adminDecideAdjustment(_$root, fieldArgs) {
            const $id = call(fieldArgs.getRaw('input'), 'admin_decide_adjustment', (i) => [i.adjustmentId, i.approve, i.note]);
            return object({ result: adjustments.get({ id: $id }) });
          },
          adminRequestRoleChange(_$root, fieldArgs) {
            const $id = call(fieldArgs.getRaw('input'), 'admin_request_role_change', (i) => [i.userId, i.role, i.reason]);
            return object({ result: roleChanges.get({ id: $id }) });
          },
          adminDecideRoleChange(_$root, fieldArgs) {
            const $id = call(fieldArgs.getRaw('input'), 'admin_decide_role_change', (i) => [i.requestId, i.approve, i.note]);
            return object({ result: roleChanges.get({ id: $id }) });
          },
        },
      },
    },
  };
}, 'PgWalletAdminPlugin');

/** ADMIN_VOUCH_WINDOW_DAYS (default 7): how long a role change ties two admins together; reaches SQL as pgwallet.admin_vouch_window_days. */
export function adminPgSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const raw = env.ADMIN_VOUCH_WINDOW_DAYS;
  if (raw === undefined || raw === '') return {};
  const days = Number(raw);
  if (!Number.isSafeInteger(days) || days < 0 || days > 3650) throw new Error(`ADMIN_VOUCH_WINDOW_DAYS must be a whole number of days (0 to 3650), got "${raw}".`);
  return { 'pgwallet.admin_vouch_window_days': String(days) };
}

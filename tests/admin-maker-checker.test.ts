// Issue 9 §1: the attack one admin used to be able to play alone — promote a
// second account of their own, request an adjustment to their own wallet,
// approve it with the second account, demote it, withdraw the money — played
// over HTTP step by step. Every step is refused with a stable code, nothing
// moves, and the admin log records each refusal (refusals are returned by SQL,
// not raised, so their log line commits).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { grantAdmin } from '../src/cli/admin-grant.ts';
import { PASSWORD, registerUser, startTestApi, type TestApi } from './helpers/api.ts';
import { HEALTHY, ledgerHealth, ownerPool, walletOf } from './helpers/ledger.ts';
import { withRole } from './helpers/sql.ts';

let api: TestApi;
let owner: pg.Pool;
type Person = Awaited<ReturnType<typeof registerUser>> & { walletId: string };

const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

async function login(email: string) {
  const result = await api.graphql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, { i: { email, password: PASSWORD } });
  if (!result.data?.login) throw new Error(`login failed: ${JSON.stringify(result.errors)}`);
  return result.data.login.accessToken as string;
}

async function person(label: string, admin = false): Promise<Person> {
  const registered = await registerUser(api, label);
  let token = registered.accessToken;
  if (admin) {
    await grantAdmin(inject('ownerUrl'), registered.email);
    token = await login(registered.email);
  }
  return { ...registered, accessToken: token, walletId: await walletOf(owner, registered.user.rowId) };
}

const requestRole = (token: string, userId: string, role: 'admin' | 'user') =>
  api.graphql(
    `mutation($i: AdminRequestRoleChangeInput!) { adminRequestRoleChange(input: $i) { result { rowId status } } }`,
    { i: { userId, role, reason: 'needs access' } },
    token,
  );
const decideRole = (token: string, requestId: string, approve = true) =>
  api.graphql(
    `mutation($i: AdminDecideRoleChangeInput!) { adminDecideRoleChange(input: $i) { result { status } } }`,
    { i: { requestId, approve, note: 'checked' } },
    token,
  );
const requestAdjustment = (token: string, walletId: string, amount = '1000000') =>
  api.graphql(
    `mutation($i: AdminRequestAdjustmentInput!) { adminRequestAdjustment(input: $i) { result { rowId status } } }`,
    { i: { walletId, amount, reason: 'goodwill' } },
    token,
  );
const decideAdjustment = (token: string, adjustmentId: string, approve = true) =>
  api.graphql(
    `mutation($i: AdminDecideAdjustmentInput!) { adminDecideAdjustment(input: $i) { result { status entryId } } }`,
    { i: { adjustmentId, approve, note: 'looks fine' } },
    token,
  );

async function roleOf(userId: string) {
  return (await owner.query(`select role from app_public.users where id = $1`, [userId])).rows[0].role as string;
}

/** The attacker's refusals in the admin log, oldest first: [actor email, attempt, code]. */
async function refusals(actorIds: string[]) {
  const { rows } = await owner.query(
    `select actor_email, details->>'attempt' as attempt, details->>'code' as code
       from audit.admin_actions where action = 'refused' and actor_id = any($1::uuid[]) order by id`,
    [actorIds],
  );
  return rows.map((r) => [r.actor_email, r.attempt, r.code]);
}

let boss: Person; // an honest admin
let mallory: Person; // the attacking admin
let mallory2: Person; // mallory's second account
let mallory3: Person; // mallory's third account, to be paid

beforeAll(async () => {
  owner = ownerPool(4);
  api = await startTestApi();
  [boss, mallory, mallory2, mallory3] = await Promise.all([person('boss', true), person('mallory', true), person('mallory2'), person('mallory3')]);
});
afterAll(async () => {
  await api.close();
  await owner.end();
});

describe('one admin cannot create money alone', () => {
  it('plays the whole attack; each step is refused with a stable code and logged', async () => {
    // 1. Promote a second account. The old one-step mutation is gone; a request needs another admin.
    const direct = await api.graphql(
      `mutation { adminSetUserRole(input: { userId: "${mallory2.user.rowId}", role: admin, reason: "x" }) { result { role } } }`,
      {},
      mallory.accessToken,
    );
    expect(direct.errors?.[0]?.message).toMatch(/adminSetUserRole/);
    const promotion = await requestRole(mallory.accessToken, mallory2.user.rowId, 'admin');
    expect(promotion.data.adminRequestRoleChange.result.status).toBe('pending');
    const promotionId = promotion.data.adminRequestRoleChange.result.rowId;
    expect(codeOf(await decideRole(mallory.accessToken, promotionId))).toBe('ADMIN_SELF_APPROVAL');
    expect(codeOf(await decideRole(mallory2.accessToken, promotionId))).toBe('PERMISSION_DENIED');
    expect(await roleOf(mallory2.user.rowId)).toBe('user');

    // 2. Request an adjustment to one's own wallet.
    expect(codeOf(await requestAdjustment(mallory.accessToken, mallory.walletId))).toBe('ADJUSTMENT_OWN_WALLET');
    const { rows: ownRequests } = await owner.query(`select count(*)::int as n from app_public.balance_adjustments where wallet_id = $1`, [mallory.walletId]);
    expect(ownRequests[0].n).toBe(0);

    // 3. Suppose mallory talks the honest admin into approving the promotion.
    expect((await decideRole(boss.accessToken, promotionId)).data.adminDecideRoleChange.result.status).toBe('approved');
    expect(await roleOf(mallory2.user.rowId)).toBe('admin');
    const m2 = await login(mallory2.email);

    // 4. Approve with the second account: every pairing is refused.
    // a) mallory2 asks for money for mallory; mallory approves: it is her wallet.
    const forMallory = (await requestAdjustment(m2, mallory.walletId)).data.adminRequestAdjustment.result.rowId;
    expect(codeOf(await decideAdjustment(mallory.accessToken, forMallory))).toBe('ADJUSTMENT_OWN_WALLET');
    // b) mallory asks for money for mallory2; mallory2 approves: her wallet too.
    const forMallory2 = (await requestAdjustment(mallory.accessToken, mallory2.walletId)).data.adminRequestAdjustment.result.rowId;
    expect(codeOf(await decideAdjustment(m2, forMallory2))).toBe('ADJUSTMENT_OWN_WALLET');
    // c) money for a third account: mallory requested mallory2's role, so the two cannot check each other.
    const forThird = (await requestAdjustment(mallory.accessToken, mallory3.walletId)).data.adminRequestAdjustment.result.rowId;
    expect(codeOf(await decideAdjustment(m2, forThird))).toBe('ADMIN_RECENTLY_VOUCHED');
    const forThirdBy2 = (await requestAdjustment(m2, mallory3.walletId)).data.adminRequestAdjustment.result.rowId;
    expect(codeOf(await decideAdjustment(mallory.accessToken, forThirdBy2))).toBe('ADMIN_RECENTLY_VOUCHED');
    // … nor can the admin who approved the promotion check the new admin's requests for a week.
    expect(codeOf(await decideAdjustment(boss.accessToken, forThirdBy2))).toBe('ADMIN_RECENTLY_VOUCHED');

    // 5. Demote the second account to cover the tracks: needs another admin too.
    expect(codeOf(await requestRole(m2, mallory2.user.rowId, 'user'))).toBe('ADMIN_SELF_ACTION');
    const demotion = (await requestRole(mallory.accessToken, mallory2.user.rowId, 'user')).data.adminRequestRoleChange.result.rowId;
    expect(codeOf(await decideRole(mallory.accessToken, demotion))).toBe('ADMIN_SELF_APPROVAL');
    expect(codeOf(await decideRole(m2, demotion))).toBe('ADMIN_SELF_ACTION');
    expect(await roleOf(mallory2.user.rowId)).toBe('admin');

    // 6. Withdraw: there is nothing to withdraw.
    const { rows: bank } = await owner.query(
      `insert into app_public.bank_accounts (user_id, account_holder, bank_name, branch_code, account_type, account_number_last4)
       values ($1, 'Mallory', 'FNB', '250655', 'cheque', '3456') returning id`,
      [mallory3.user.rowId],
    );
    const withdrawal = await api.graphql(
      `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { rowId } } }`,
      { i: { walletId: mallory3.walletId, amount: '1000000', bankAccountId: bank[0].id, idempotencyKey: 'cash-out' } },
      mallory3.accessToken,
    );
    expect(codeOf(withdrawal)).toBe('INSUFFICIENT_FUNDS');
    const { rows: balances } = await owner.query(`select coalesce(sum(balance), 0)::text as total from ledger.accounts where id = any($1::uuid[])`, [
      [mallory.walletId, mallory2.walletId, mallory3.walletId],
    ]);
    expect(balances[0].total).toBe('0');
    // (Other suites share the database: count only what touches mallory's wallets.)
    const { rows: approved } = await owner.query(`select count(*)::int as n from app_public.balance_adjustments where status = 'approved' and wallet_id = any($1::uuid[])`, [
      [mallory.walletId, mallory2.walletId, mallory3.walletId],
    ]);
    expect(approved[0].n).toBe(0);
    expect(await ledgerHealth(owner)).toEqual(HEALTHY);

    // The admin log holds every refusal, with who tried what.
    expect(await refusals([mallory.user.rowId, mallory2.user.rowId, boss.user.rowId])).toEqual([
      [mallory.email, 'approve_role_change', 'ADMIN_SELF_APPROVAL'],
      [mallory.email, 'request_adjustment', 'ADJUSTMENT_OWN_WALLET'],
      [mallory.email, 'approve_adjustment', 'ADJUSTMENT_OWN_WALLET'],
      [mallory2.email, 'approve_adjustment', 'ADJUSTMENT_OWN_WALLET'],
      [mallory2.email, 'approve_adjustment', 'ADMIN_RECENTLY_VOUCHED'],
      [mallory.email, 'approve_adjustment', 'ADMIN_RECENTLY_VOUCHED'],
      [boss.email, 'approve_adjustment', 'ADMIN_RECENTLY_VOUCHED'],
      [mallory2.email, 'request_role_change', 'ADMIN_SELF_ACTION'],
      [mallory.email, 'approve_role_change', 'ADMIN_SELF_APPROVAL'],
      [mallory2.email, 'approve_role_change', 'ADMIN_SELF_ACTION'],
    ]);
  });

  it('direct SQL as app_admin gets the same refusal (an outcome, not an exception) and cannot write the tables behind the functions', async () => {
    const sid = JSON.parse(Buffer.from(mallory.accessToken.split('.')[1], 'base64url').toString()).sid as string;
    const outcome = await withRole({ role: 'app_admin', userId: mallory.user.rowId, sessionId: sid, roleClaim: 'app_admin' }, async (c) => {
      const { rows } = await c.query(`select * from app_private.admin_request_adjustment($1, 500, 'direct')`, [mallory.walletId]);
      const readLog = await c.query(`select count(*) from app_private.admin_actions`).then(() => 'ok', (e) => e.code);
      return { ...rows[0], readLog };
    });
    // The admin log stays unreadable (and unwritable) to admins themselves.
    expect(outcome).toMatchObject({ code: 'ADJUSTMENT_OWN_WALLET', id: null, readLog: '42501' });
    // Nor can app_admin write the tables behind the functions.
    const write = await withRole({ role: 'app_admin', userId: mallory.user.rowId, sessionId: sid, roleClaim: 'app_admin' }, (c) =>
      c.query(`insert into app_public.role_change_requests (user_id, from_role, role, reason, requested_by) values ($1, 'user', 'admin', 'x', $2)`, [mallory3.user.rowId, mallory.user.rowId]).catch((e) => e.code),
    );
    expect(write).toBe('42501');
  });

  it('the window is configurable (ADMIN_VOUCH_WINDOW_DAYS → pgwallet.admin_vouch_window_days) and ends', async () => {
    const { rows } = await owner.query(`select app_private.admins_recently_linked($1, $2) as linked`, [mallory.user.rowId, mallory2.user.rowId]);
    expect(rows[0].linked).toBe(true);
    const zero = await withRole({ role: 'app_owner' }, async (c) => {
      await c.query(`select set_config('pgwallet.admin_vouch_window_days', '0', true)`);
      return (await c.query(`select app_private.admins_recently_linked($1, $2) as linked`, [mallory.user.rowId, mallory2.user.rowId])).rows[0].linked;
    });
    expect(zero).toBe(false);
  });

  it('an admin cannot be erased (which would demote them) without a role change first', async () => {
    const erase = await api.graphql(
      `mutation($i: AdminEraseUserInput!) { adminEraseUser(input: $i) { result } }`,
      { i: { userId: mallory2.user.rowId, reason: 'cover tracks' } },
      mallory.accessToken,
    );
    expect(codeOf(erase)).toBe('ADMIN_ERASE_ADMIN');
    expect(await roleOf(mallory2.user.rowId)).toBe('admin');
  });
});

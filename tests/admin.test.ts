// Roles and the admin API, over real HTTP and PostgreSQL: admins are made
// only by the CLI or another admin, every admin operation checks the caller in
// SQL and lands in the append-only admin log, adjustments need a second admin,
// the auditor reads audit views and can write nothing, and a user cannot
// escalate by forged claims, direct SQL or GraphQL.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { generatePrivateJwk, loadSigningKeys } from '../src/auth/keys.ts';
import { signAccessToken } from '../src/auth/tokens.ts';
import { grantAdmin } from '../src/cli/admin-grant.ts';
import { PASSWORD, registerUser, startTestApi, type TestApi } from './helpers/api.ts';
import { HEALTHY, fund, ledgerHealth, ownerPool, walletOf } from './helpers/ledger.ts';
import { sqlstateOf, withRole } from './helpers/sql.ts';

let api: TestApi;
let owner: pg.Pool;
type Person = Awaited<ReturnType<typeof registerUser>> & { walletId: string; sid: string };
let alice: Person;
let admin1: Person;
let admin2: Person;

const sessionOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid as string;

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
  return { ...registered, accessToken: token, sid: sessionOf(token), walletId: await walletOf(owner, registered.user.rowId) };
}

const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

async function adminLog(targetId: string) {
  const { rows } = await owner.query(`select * from audit.admin_actions where target_id = $1 order by id`, [targetId]);
  return rows;
}

beforeAll(async () => {
  owner = ownerPool(4);
  api = await startTestApi();
  [alice, admin1, admin2] = await Promise.all([person('alice'), person('admin1', true), person('admin2', true)]);
});
afterAll(async () => {
  await api.close();
  await owner.end();
});

describe('becoming an admin', () => {
  it('npm run admin:grant makes the first admin, logged as the CLI; old sessions end', async () => {
    const bob = await registerUser(api, 'bob');
    const { stdout } = await promisify(execFile)(process.execPath, ['src/cli/admin-grant.ts', bob.email], {
      env: { ...process.env, DATABASE_URL: inject('ownerUrl'), AUTH_DATABASE_URL: inject('authUrl') },
    });
    expect(stdout).toContain('is an admin');
    const { rows } = await owner.query(`select role from app_public.users where id = $1`, [bob.user.rowId]);
    expect(rows[0].role).toBe('admin');
    // The token from before the grant belongs to an ended session.
    expect((await api.graphql('{ currentUser { rowId } }', {}, bob.accessToken)).data.currentUser).toBeNull();
    const token = await login(bob.email);
    expect(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).role).toBe('app_admin');
    expect((await adminLog(bob.user.rowId)).map((r) => [r.actor, r.action])).toEqual([['cli', 'grant_admin']]);
  });

  it('another admin approves a role change an admin requested; nobody changes their own role', async () => {
    const carol = await registerUser(api, 'carol');
    const request = await api.graphql(
      `mutation($i: AdminRequestRoleChangeInput!) { adminRequestRoleChange(input: $i) { result { rowId userId role fromRole status } } }`,
      { i: { userId: carol.user.rowId, role: 'admin', reason: 'on-call rota' } },
      admin1.accessToken,
    );
    expect(request.data.adminRequestRoleChange.result).toMatchObject({ userId: carol.user.rowId, role: 'admin', fromRole: 'user', status: 'pending' });
    const requestId = request.data.adminRequestRoleChange.result.rowId;
    const approve = await api.graphql(
      `mutation($i: AdminDecideRoleChangeInput!) { adminDecideRoleChange(input: $i) { result { status decidedBy } } }`,
      { i: { requestId, approve: true, note: 'agreed' } },
      admin2.accessToken,
    );
    expect(approve.data.adminDecideRoleChange.result).toEqual({ status: 'approved', decidedBy: admin2.user.rowId });
    const { rows } = await owner.query(`select role from app_public.users where id = $1`, [carol.user.rowId]);
    expect(rows[0].role).toBe('admin');
    const self = await api.graphql(
      `mutation($i: AdminRequestRoleChangeInput!) { adminRequestRoleChange(input: $i) { result { role } } }`,
      { i: { userId: admin1.user.rowId, role: 'user', reason: 'oops' } },
      admin1.accessToken,
    );
    expect(codeOf(self)).toBe('ADMIN_SELF_ACTION');
    const log = await adminLog(carol.user.rowId);
    expect(log).toMatchObject([
      { actor: 'admin', actor_id: admin1.user.rowId, action: 'request_role_change', details: { from: 'user', to: 'admin', reason: 'on-call rota' } },
      { actor: 'admin', actor_id: admin2.user.rowId, action: 'approve_role_change', details: { from: 'user', to: 'admin', note: 'agreed' } },
    ]);
  });
});

describe('a user cannot escalate', () => {
  it('GraphQL offers no way to write the role column', async () => {
    const result = await api.graphql(
      `mutation($id: UUID!) { updateUserByRowId(input: { rowId: $id, userPatch: { role: admin } }) { user { role } } }`,
      { id: alice.user.rowId },
      alice.accessToken,
    );
    expect(result.errors?.[0]?.message).toMatch(/role/);
    const { rows } = await owner.query(`select role from app_public.users where id = $1`, [alice.user.rowId]);
    expect(rows[0].role).toBe('user');
  });

  it('admin operations refuse a user, in SQL, whatever the token claims', async () => {
    const asUser = await api.graphql(
      `mutation($i: AdminRequestRoleChangeInput!) { adminRequestRoleChange(input: $i) { result { role } } }`,
      { i: { userId: alice.user.rowId, role: 'admin', reason: 'me' } },
      alice.accessToken,
    );
    expect(codeOf(asUser)).toBe('PERMISSION_DENIED');
    // A token with role app_admin for a plain user (as if the claim were forged
    // with the real key): SQL checks users.role and refuses.
    const forged = await signAccessToken(api.tokens, { userId: alice.user.rowId, role: 'app_admin', sessionId: alice.sid });
    const withForged = await api.graphql(
      `mutation($i: AdminRequestRoleChangeInput!) { adminRequestRoleChange(input: $i) { result { role } } }`,
      { i: { userId: alice.user.rowId, role: 'admin', reason: 'me' } },
      forged.token,
    );
    expect(codeOf(withForged)).toBe('PERMISSION_DENIED');
    expect((await api.graphql('{ adminDeadJobs { totalCount } }', {}, forged.token)).errors?.[0]?.extensions?.code).toBe('PERMISSION_DENIED');
    expect((await api.graphql('{ allUsers { totalCount } }', {}, forged.token)).data.allUsers.totalCount).toBe(1);
    // A token signed with another key never reaches SQL.
    const otherKeys = { ...api.tokens, keys: await loadSigningKeys(await generatePrivateJwk()) };
    const foreign = await signAccessToken(otherKeys, { userId: admin1.user.rowId, role: 'app_admin', sessionId: admin1.sid });
    expect((await api.graphql('{ currentUser { rowId } }', {}, foreign.token)).status).toBe(401);
  });

  it('direct SQL as app_user (or app_admin with a user session) cannot raise a role or call admin functions', async () => {
    const claims = { userId: alice.user.rowId, sessionId: alice.sid, roleClaim: 'app_admin' };
    expect(await sqlstateOf({ role: 'app_user', ...claims }, `update app_public.users set role = 'admin' where id = $1`, [alice.user.rowId])).toBe('42501');
    expect(await sqlstateOf({ role: 'app_user', ...claims }, `select app_private.admin_request_role_change($1, 'admin', 'x')`, [alice.user.rowId])).toBe('42501');
    expect(await sqlstateOf({ role: 'app_user', ...claims }, `select app_private.grant_admin($1)`, [alice.email])).toBe('42501');
    expect(await sqlstateOf({ role: 'app_user', ...claims }, `insert into app_private.admin_actions (actor, action) values ('admin', 'x')`)).toBe('42501');
    expect(await sqlstateOf({ role: 'app_admin', ...claims }, `select app_private.admin_request_role_change($1, 'admin', 'x')`, [alice.user.rowId])).toBe('42501');
    expect(await sqlstateOf({ role: 'app_admin', ...claims }, `update app_public.users set role = 'admin' where id = $1`, [alice.user.rowId])).toBe('42501');
    const { rows } = await owner.query(`select role from app_public.users where id = $1`, [alice.user.rowId]);
    expect(rows[0].role).toBe('user');
  });

  it('a demoted admin loses admin rights at once, even with an unexpired token', async () => {
    const dave = await person('dave', true);
    expect(codeOf(await api.graphql('{ adminDeadJobs { totalCount } }', {}, dave.accessToken))).toBeUndefined();
    await owner.query(`update app_public.users set role = 'user' where id = $1`, [dave.user.rowId]);
    expect(codeOf(await api.graphql('{ adminDeadJobs { totalCount } }', {}, dave.accessToken))).toBe('PERMISSION_DENIED');
  });
});

describe('admin operations', () => {
  it('list every user and wallet (a user still sees only themselves)', async () => {
    const users = await api.graphql('{ allUsers(first: 100) { totalCount } adminWallets: allAdminWallets(condition: { ownerId: "' + alice.user.rowId + '" }) { nodes { rowId ownerEmail frozen } } }', {}, admin1.accessToken);
    expect(users.data.allUsers.totalCount).toBeGreaterThanOrEqual(3);
    expect(users.data.adminWallets.nodes).toEqual([{ rowId: alice.walletId, ownerEmail: alice.email, frozen: false }]);
    expect((await api.graphql('{ allUsers { totalCount } }', {}, alice.accessToken)).data.allUsers.totalCount).toBe(1);
    expect(codeOf(await api.graphql('{ allAdminWallets { totalCount } }', {}, alice.accessToken))).toBe('PERMISSION_DENIED');
  });

  it('freeze and unfreeze a wallet, with a reason, logged with the client address', async () => {
    const freeze = (frozen: boolean, reason: string | null = 'fraud review') =>
      api.graphql(
        `mutation($i: AdminSetWalletFrozenInput!) { adminSetWalletFrozen(input: $i) { result { rowId frozen } } }`,
        { i: { walletId: alice.walletId, frozen, reason } },
        admin1.accessToken,
      );
    expect(codeOf(await freeze(true, ''))).toBe('REASON_REQUIRED');
    expect((await freeze(true)).data.adminSetWalletFrozen.result).toEqual({ rowId: alice.walletId, frozen: true });
    expect((await api.graphql('{ allWallets { nodes { frozen } } }', {}, alice.accessToken)).data.allWallets.nodes[0].frozen).toBe(true);
    expect((await freeze(false, 'cleared')).data.adminSetWalletFrozen.result.frozen).toBe(false);
    const log = await adminLog(alice.walletId);
    expect(log.map((r) => r.action)).toEqual(['freeze_wallet', 'unfreeze_wallet']);
    expect(log[0]).toMatchObject({ actor: 'admin', actor_id: admin1.user.rowId, actor_email: admin1.email, target_type: 'wallet', details: { reason: 'fraud review', was_frozen: false } });
    expect(String(log[0].client_ip)).toMatch(/127\.0\.0\.1|::1/);
    expect(log[0].request_id).toBeTruthy();
    expect(log[0].occurred_at).toBeInstanceOf(Date);
  });

  it('maker-checker: the requester cannot approve; a second admin approves and the entry is posted', async () => {
    const request = await api.graphql(
      `mutation($i: AdminRequestAdjustmentInput!) { adminRequestAdjustment(input: $i) { result { rowId status amount } } }`,
      { i: { walletId: alice.walletId, amount: '5000', reason: 'goodwill credit, ticket 42' } },
      admin1.accessToken,
    );
    const id = request.data.adminRequestAdjustment.result.rowId;
    expect(request.data.adminRequestAdjustment.result).toMatchObject({ status: 'pending', amount: '5000' });
    const decide = (token: string, approve = true) =>
      api.graphql(
        `mutation($i: AdminDecideAdjustmentInput!) { adminDecideAdjustment(input: $i) { result { status entryId decidedBy requestedBy } } }`,
        { i: { adjustmentId: id, approve, note: 'checked the ticket' } },
        token,
      );
    expect(codeOf(await decide(admin1.accessToken))).toBe('ADMIN_SELF_APPROVAL');
    expect(codeOf(await decide(alice.accessToken))).toBe('PERMISSION_DENIED');
    const approved = await decide(admin2.accessToken);
    expect(approved.data.adminDecideAdjustment.result).toMatchObject({ status: 'approved', decidedBy: admin2.user.rowId, requestedBy: admin1.user.rowId });
    expect(codeOf(await decide(admin2.accessToken))).toBe('ADJUSTMENT_NOT_PENDING');

    const wallet = await api.graphql('{ allWallets { nodes { balance transactions { nodes { kind amount counterpartyName } } } } }', {}, alice.accessToken);
    expect(wallet.data.allWallets.nodes[0].balance).toBe('5000');
    expect(wallet.data.allWallets.nodes[0].transactions.nodes).toEqual([{ kind: 'adjustment', amount: '5000', counterpartyName: 'pgwallet adjustment' }]);
    expect(await ledgerHealth(owner)).toEqual(HEALTHY);
    expect((await adminLog(id)).map((r) => [r.action, r.actor_id])).toEqual([
      ['request_adjustment', admin1.user.rowId],
      ['refused', admin1.user.rowId], // the requester's own approval attempt
      ['approve_adjustment', admin2.user.rowId],
    ]);

    // A debit, rejected: nothing moves.
    const debit = await api.graphql(
      `mutation($i: AdminRequestAdjustmentInput!) { adminRequestAdjustment(input: $i) { result { rowId } } }`,
      { i: { walletId: alice.walletId, amount: '-1000', reason: 'duplicate credit' } },
      admin2.accessToken,
    );
    const rejected = await api.graphql(
      `mutation($i: AdminDecideAdjustmentInput!) { adminDecideAdjustment(input: $i) { result { status entryId } } }`,
      { i: { adjustmentId: debit.data.adminRequestAdjustment.result.rowId, approve: false, note: 'not a duplicate' } },
      admin1.accessToken,
    );
    expect(rejected.data.adminDecideAdjustment.result).toEqual({ status: 'rejected', entryId: null });
    const { rows } = await owner.query(`select balance::text from ledger.accounts where id = $1`, [alice.walletId]);
    expect(rows[0].balance).toBe('5000');
  });

  it('an admin cannot approve an adjustment to their own wallet, and the table refuses self-approval too', async () => {
    const request = await api.graphql(
      `mutation($i: AdminRequestAdjustmentInput!) { adminRequestAdjustment(input: $i) { result { rowId } } }`,
      { i: { walletId: admin2.walletId, amount: '100', reason: 'test' } },
      admin1.accessToken,
    );
    const id = request.data.adminRequestAdjustment.result.rowId;
    const self = await api.graphql(
      `mutation($i: AdminDecideAdjustmentInput!) { adminDecideAdjustment(input: $i) { result { status } } }`,
      { i: { adjustmentId: id, approve: true, note: 'mine' } },
      admin2.accessToken,
    );
    expect(codeOf(self)).toBe('ADJUSTMENT_OWN_WALLET');
    const direct = await owner.query(
      `update app_public.balance_adjustments set status = 'approved', decided_by = requested_by, decided_at = now() where id = $1`,
      [id],
    ).catch((e) => e);
    expect(direct.code).toBe('23514');
  });

  it('see and retry dead-letter jobs', async () => {
    const { rows } = await owner.query(`select id from graphile_worker.add_job('pgwallet_test.dead_letter', '{}'::json, max_attempts := 3)`);
    const jobId = String(rows[0].id);
    try {
      await owner.query(`update graphile_worker._private_jobs set attempts = 3, last_error = 'boom' where id = $1`, [jobId]);
      const dead = await api.graphql('{ adminDeadJobs { nodes { jobId task lastError attempts } } }', {}, admin1.accessToken);
      expect(dead.data.adminDeadJobs.nodes).toContainEqual({ jobId, task: 'pgwallet_test.dead_letter', lastError: 'boom', attempts: 3 });
      const retry = (id: string) =>
        api.graphql(`mutation($i: AdminRetryJobInput!) { adminRetryJob(input: $i) { result } }`, { i: { jobId: id, reason: 'Revio is back' } }, admin1.accessToken);
      expect((await retry(jobId)).data.adminRetryJob.result).toBe(true);
      const job = await owner.query(`select attempts, run_at <= now() as due from graphile_worker.jobs where id = $1`, [jobId]);
      expect(job.rows[0]).toEqual({ attempts: 0, due: true });
      expect(codeOf(await retry(jobId))).toBe('JOB_NOT_DEAD');
      expect((await adminLog(jobId)).map((r) => r.action)).toEqual(['retry_job']);
    } finally {
      await owner.query(`select graphile_worker.complete_jobs(array[$1::bigint])`, [jobId]);
    }
  });

  it('resolve reconciliation discrepancies and flagged deposits', async () => {
    const { rows } = await owner.query(
      `insert into app_private.revio_discrepancies (run_id, kind, detail, currency, ledger_amount, revio_amount)
       values (uuidv7(), 'amount_differs', 'test difference', 'ZAR', 100, 90) returning id`,
    );
    const id = String(rows[0].id);
    const open = await api.graphql('{ adminOpenDiscrepancies { nodes { id kind } } }', {}, admin1.accessToken);
    expect(open.data.adminOpenDiscrepancies.nodes).toContainEqual({ id, kind: 'amount_differs' });
    const resolve = () =>
      api.graphql(`mutation($i: AdminResolveDiscrepancyInput!) { adminResolveDiscrepancy(input: $i) { result } }`, { i: { discrepancyId: id, note: 'Revio fee, booked' } }, admin1.accessToken);
    expect((await resolve()).data.adminResolveDiscrepancy.result).toBe(true);
    expect(codeOf(await resolve())).toBe('DISCREPANCY_NOT_FOUND');
    const after = await owner.query(`select resolved_by, resolution_note from app_private.revio_discrepancies where id = $1`, [id]);
    expect(after.rows[0]).toEqual({ resolved_by: admin1.user.rowId, resolution_note: 'Revio fee, booked' });

    const deposit = await owner.query(
      `insert into app_public.deposits (user_id, wallet_id, amount, currency, idempotency_key, status, needs_attention, attention_reason)
       values ($1, $2, 1000, 'ZAR', 'flagged-' || gen_random_uuid(), 'failed', true, 'amount mismatch') returning id`,
      [alice.user.rowId, alice.walletId],
    );
    const depositId = deposit.rows[0].id;
    const flagged = await api.graphql('{ adminFlaggedPayments { nodes { kind id attentionReason } } }', {}, admin2.accessToken);
    expect(flagged.data.adminFlaggedPayments.nodes).toContainEqual({ kind: 'deposit', id: depositId, attentionReason: 'amount mismatch' });
    const resolveFlag = () =>
      api.graphql(
        `mutation($i: AdminResolveFlaggedPaymentInput!) { adminResolveFlaggedPayment(input: $i) { result } }`,
        { i: { kind: 'deposit', paymentId: depositId, note: 'refunded at Revio' } },
        admin2.accessToken,
      );
    expect((await resolveFlag()).data.adminResolveFlaggedPayment.result).toBe(true);
    expect(codeOf(await resolveFlag())).toBe('PAYMENT_NOT_FLAGGED');
    expect((await adminLog(depositId)).map((r) => r.action)).toEqual(['resolve_flagged_payment']);
  });
});

describe('the admin log and the auditor', () => {
  it('is append-only, even for the owner', async () => {
    expect((await owner.query(`update app_private.admin_actions set action = 'x'`).catch((e) => e)).code).toBe('PW310');
    expect((await owner.query(`delete from app_private.admin_actions`).catch((e) => e)).code).toBe('PW310');
    expect((await owner.query(`truncate app_private.admin_actions`).catch((e) => e)).code).toBe('PW310');
  });

  it('the auditor reads the audit views, including the admin log', async () => {
    const rows = await withRole({ role: 'app_auditor' }, async (c) => (await c.query(`select action from audit.admin_actions where actor_id = $1`, [admin1.user.rowId])).rows);
    expect(rows.length).toBeGreaterThan(0);
    expect(await sqlstateOf({ role: 'app_auditor' }, 'select count(*) from audit.trial_balance')).toBe('ok');
    expect(await sqlstateOf({ role: 'app_auditor' }, 'select * from app_public.users')).toBe('42501');
  });

  it('the auditor cannot write anything: no write privilege on any relation, no volatile function', async () => {
    const writable = await withRole({ role: 'app_owner' }, async (c) =>
      (
        await c.query(`
          select c.oid::regclass::text as rel
            from pg_class c
           where c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
             and c.relnamespace::regnamespace::text not like 'pg_toast%'
             and c.relkind in ('r', 'p', 'v', 'm', 'f')
             and (has_table_privilege('app_auditor', c.oid, 'INSERT') or has_table_privilege('app_auditor', c.oid, 'UPDATE')
                  or has_table_privilege('app_auditor', c.oid, 'DELETE') or has_table_privilege('app_auditor', c.oid, 'TRUNCATE'))`)
      ).rows,
    );
    expect(writable).toEqual([]);
    const readable = await withRole({ role: 'app_owner' }, async (c) =>
      (
        await c.query(`
          select c.oid::regclass::text as rel
            from pg_class c
           where c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'audit'::regnamespace)
             and c.relkind in ('r', 'p', 'v', 'm', 'f')
             and has_table_privilege('app_auditor', c.oid, 'SELECT')`)
      ).rows,
    );
    expect(readable).toEqual([]);
    const functions = await withRole({ role: 'app_owner' }, async (c) =>
      (
        await c.query(`
          select p.oid::regprocedure::text as fn, p.provolatile
            from pg_proc p
           where p.pronamespace in ('app_public'::regnamespace, 'app_private'::regnamespace, 'ledger'::regnamespace, 'audit'::regnamespace)
             and has_function_privilege('app_auditor', p.oid, 'EXECUTE')
             and p.provolatile = 'v'`)
      ).rows,
    );
    expect(functions).toEqual([]);
    // And in practice:
    expect(await sqlstateOf({ role: 'app_auditor' }, `insert into app_private.admin_actions (actor, action) values ('admin', 'x')`)).toBe('42501');
    expect(await sqlstateOf({ role: 'app_auditor' }, `update ledger.accounts set frozen = true`)).toBe('42501');
    expect(await sqlstateOf({ role: 'app_auditor' }, `select app_public.admin_set_wallet_frozen($1, true, 'x')`, [alice.walletId])).toBe('42501');
    expect(await sqlstateOf({ role: 'app_auditor' }, `select ledger.move('adjustment', $1, $1, 1)`, [alice.walletId])).toBe('42501');
  });
});

it('admin money never breaks the ledger', async () => {
  await fund(owner, alice.walletId, 1);
  expect(await ledgerHealth(owner)).toEqual(HEALTHY);
});

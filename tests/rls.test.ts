// Row-level security: a user sees and changes only their own rows, whether
// through GraphQL (including by guessing ids) or directly in SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, startTestApi, type TestApi } from './helpers/api.ts';
import { sqlstateOf, withRole } from './helpers/sql.ts';

let api: TestApi;
let alice: Awaited<ReturnType<typeof registerUser>>;
let bob: Awaited<ReturnType<typeof registerUser>>;
const sessionOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid as string;

beforeAll(async () => {
  api = await startTestApi();
  alice = await registerUser(api, 'alice');
  bob = await registerUser(api, 'bob');
});
afterAll(() => api.close());

describe('through GraphQL', () => {
  it('lists only the caller', async () => {
    const result = await api.graphql('{ allUsers { totalCount nodes { rowId } } }', {}, alice.accessToken);
    expect(result.data.allUsers).toEqual({ totalCount: 1, nodes: [{ rowId: alice.user.rowId }] });
  });

  it("cannot read another user's row by guessing its id, email or node id", async () => {
    const byRowId = await api.graphql('query($id: UUID!) { userByRowId(rowId: $id) { rowId email } }', { id: bob.user.rowId }, alice.accessToken);
    expect(byRowId.data.userByRowId).toBeNull();
    const byEmail = await api.graphql('query($e: String!) { userByEmail(email: $e) { rowId } }', { e: bob.email }, alice.accessToken);
    expect(byEmail.data.userByEmail).toBeNull();
    const bobNodeId = (await api.graphql('{ currentUser { id } }', {}, bob.accessToken)).data.currentUser.id;
    const byNode = await api.graphql('query($id: ID!) { node(id: $id) { id } }', { id: bobNodeId }, alice.accessToken);
    expect(byNode.data.node).toBeNull();
  });

  it("cannot change another user's row", async () => {
    const result = await api.graphql(
      'mutation($id: UUID!) { updateUserByRowId(input: { rowId: $id, userPatch: { fullName: "Pwned" } }) { user { fullName } } }',
      { id: bob.user.rowId },
      alice.accessToken,
    );
    // RLS hides Bob's row from the UPDATE, so nothing matches and nothing changes.
    expect(result.data.updateUserByRowId.user).toBeNull();
    const bobNow = await api.graphql('{ currentUser { fullName } }', {}, bob.accessToken);
    expect(bobNow.data.currentUser.fullName).toBe('Test bob');
  });

  it('can change their own name, but the API offers no way to change email or role', async () => {
    const ok = await api.graphql(
      'mutation($id: UUID!) { updateUserByRowId(input: { rowId: $id, userPatch: { fullName: "Alice A." } }) { user { fullName } } }',
      { id: alice.user.rowId },
      alice.accessToken,
    );
    expect(ok.data.updateUserByRowId.user.fullName).toBe('Alice A.');
    const patchFields = await api.graphql('{ __type(name: "UserPatch") { inputFields { name } } }');
    expect(patchFields.data.__type.inputFields.map((f: { name: string }) => f.name)).toEqual(['fullName']);
  });

  it('anonymous visitors see no users at all', async () => {
    const result = await api.graphql('{ allUsers { totalCount } }');
    expect(result.data?.allUsers ?? null).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('PERMISSION_DENIED');
  });
});

describe('directly in SQL', () => {
  it('app_user sees only its own row', async () => {
    const rows = await withRole({ role: 'app_user', userId: alice.user.rowId, sessionId: sessionOf(alice.accessToken) }, async (c) =>
      (await c.query('select id from app_public.users')).rows,
    );
    expect(rows).toEqual([{ id: alice.user.rowId }]);
  });

  it('a forged sub without a live session sees nothing', async () => {
    const rows = await withRole({ role: 'app_user', userId: bob.user.rowId, sessionId: sessionOf(alice.accessToken) }, async (c) =>
      (await c.query('select id from app_public.users')).rows,
    );
    expect(rows).toEqual([]);
  });

  it('app_user cannot raise its own role, change its email, or read secrets', async () => {
    const as = { role: 'app_user' as const, userId: alice.user.rowId, sessionId: sessionOf(alice.accessToken) };
    expect(await sqlstateOf(as, `update app_public.users set role = 'admin' where id = $1`, [alice.user.rowId])).toBe('42501');
    expect(await sqlstateOf(as, `update app_public.users set email = 'x@example.com' where id = $1`, [alice.user.rowId])).toBe('42501');
    expect(await sqlstateOf(as, 'select * from app_private.user_secrets')).toBe('42501');
    expect(await sqlstateOf(as, 'select * from app_private.sessions')).toBe('42501');
    expect(await sqlstateOf(as, `insert into app_public.users (email, full_name) values ('new@example.com', 'N')`)).toBe('42501');
    expect(await sqlstateOf(as, 'delete from app_public.users')).toBe('42501');
  });

  it('app_anonymous can read nothing but may call the sign-in functions', async () => {
    expect(await sqlstateOf({ role: 'app_anonymous' }, 'select * from app_public.users')).toBe('42501');
    expect(await sqlstateOf({ role: 'app_anonymous' }, 'select * from app_private.login_attempts')).toBe('42501');
    expect(await sqlstateOf({ role: 'app_anonymous' }, `select app_private.start_session(null::app_public.users)`)).toBe('42501');
    expect(await sqlstateOf({ role: 'app_anonymous' }, `select * from app_private.login('nobody@example.com', 'x')`)).toBe('ok');
  });

  it('every table in app_public has row-level security enabled', async () => {
    const rows = await withRole({ role: 'app_owner' }, async (c) =>
      (await c.query(`select relname from pg_class where relnamespace = 'app_public'::regnamespace and relkind in ('r', 'p') and not relrowsecurity`)).rows,
    );
    expect(rows).toEqual([]);
  });

  it('every SECURITY DEFINER function pins its search_path', async () => {
    const rows = await withRole({ role: 'app_owner' }, async (c) =>
      (
        await c.query(`
          select p.oid::regprocedure::text as fn
            from pg_proc p
           where p.prosecdef
             and p.pronamespace in ('app_public'::regnamespace, 'app_private'::regnamespace)
             and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')`)
      ).rows,
    );
    expect(rows).toEqual([]);
  });
});

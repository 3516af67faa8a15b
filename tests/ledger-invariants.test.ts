// Every ledger invariant, attacked directly in SQL by every role that is not a
// superuser. The API's roles have no privileges on the ledger at all; the
// owner has every privilege, and the triggers still refuse.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { HEALTHY, accountState, createUser, fund, ledgerHealth, ownerPool, walletOf } from './helpers/ledger.ts';

type Role = 'app_owner' | 'authenticator' | 'app_anonymous' | 'app_user' | 'app_admin' | 'app_auditor';
const ROLES: Role[] = ['app_owner', 'authenticator', 'app_anonymous', 'app_user', 'app_admin', 'app_auditor'];

let owner: pg.Pool;
const f = {} as { a: string; b: string; frozen: string; usd: string; entry: string; hold: string; userA: string };

beforeAll(async () => {
  owner = ownerPool();
  const alice = await createUser(owner, 'inv-a');
  const bob = await createUser(owner, 'inv-b');
  const carol = await createUser(owner, 'inv-frozen');
  f.a = alice.walletId;
  f.userA = alice.userId;
  f.b = bob.walletId;
  f.frozen = carol.walletId;
  f.usd = await walletOf(owner, bob.userId, 'USD');
  await fund(owner, f.a, 1000);
  await fund(owner, f.frozen, 500);
  await fund(owner, f.usd, 500);
  await owner.query(`select ledger.set_frozen($1, true)`, [f.frozen]);
  f.entry = (await owner.query(`select ledger.move('transfer', $1, $2, 100) as id`, [f.a, f.b])).rows[0].id;
  f.hold = (await owner.query(`select ledger.place_hold($1, 200, now() + interval '1 day') as id`, [f.a])).rows[0].id;
});
afterAll(() => owner.end());

/** One connection per role, reused: each attempt is its own transaction. */
const connections = new Map<Role, Promise<pg.Client>>();
function connectionFor(role: Role): Promise<pg.Client> {
  if (!connections.has(role)) {
    const url = role === 'app_owner' ? inject('ownerUrl') : role === 'app_auditor' ? inject('rootUrl') : inject('authUrl');
    const client = new pg.Client({ connectionString: url });
    connections.set(role, client.connect().then(() => client));
  }
  return connections.get(role)!;
}
afterAll(async () => {
  for (const client of connections.values()) await (await client).end();
});

/** Runs `sql` in one transaction as `role` (COMMIT included) and returns the SQLSTATE it failed with. */
async function attempt(role: Role, sql: string): Promise<string> {
  const client = await connectionFor(role);
  try {
    await client.query('begin');
    if (role !== 'app_owner' && role !== 'authenticator') await client.query(`set local role ${role}`);
    await client.query(sql);
    await client.query('commit');
    return 'succeeded';
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    return (error as { code?: string }).code ?? 'unknown';
  }
}

// [invariant, attack, SQLSTATE the owner gets]
const attacks: [string, () => string, string][] = [
  ['postings cannot be updated', () => `update ledger.postings set amount = amount * 2 where entry_id = '${f.entry}'`, 'PW121'],
  ['postings cannot be deleted', () => `delete from ledger.postings where entry_id = '${f.entry}'`, 'PW121'],
  ['postings cannot be truncated', () => `truncate ledger.postings cascade`, 'PW121'],
  ['entries cannot be updated', () => `update ledger.entries set memo = 'edited' where id = '${f.entry}'`, 'PW121'],
  ['entries cannot be deleted', () => `delete from ledger.entries where id = '${f.entry}'`, 'PW121'],
  ['accounts cannot be deleted', () => `delete from ledger.accounts where id = '${f.b}'`, 'PW121'],
  ['holds cannot be deleted', () => `delete from ledger.holds where id = '${f.hold}'`, 'PW121'],
  ['a balance cannot be written directly', () => `update ledger.accounts set balance = balance + 1000000 where id = '${f.a}'`, 'PW122'],
  [
    'a balance cannot be written even with a plausible version',
    () => `update ledger.accounts set balance = balance + 1000000, version = version + 1 where id = '${f.a}'`,
    'PW122',
  ],
  ['held cannot be written directly', () => `update ledger.accounts set held = 0 where id = '${f.a}'`, 'PW122'],
  ['an account cannot change currency', () => `update ledger.accounts set currency = 'USD' where id = '${f.a}'`, 'PW121'],
  ['a wallet cannot be allowed to go negative', () => `update ledger.accounts set allow_negative = true where id = '${f.a}'`, 'PW121'],
  ['a hold amount cannot change', () => `update ledger.holds set amount = 1 where id = '${f.hold}'`, 'PW121'],
  [
    'an entry with one posting does not commit',
    () => `with e as (insert into ledger.entries (kind) values ('adjustment') returning id)
           insert into ledger.postings (entry_id, account_id, amount) select e.id, '${f.b}', 1000000 from e`,
    'PW120',
  ],
  [
    'an entry that does not sum to zero does not commit',
    () => `with e as (insert into ledger.entries (kind) values ('adjustment') returning id)
           insert into ledger.postings (entry_id, account_id, amount)
           select e.id, x.account, x.amount from e, (values ('${f.a}'::uuid, -100::bigint), ('${f.b}'::uuid, 1000::bigint)) x(account, amount)`,
    'PW120',
  ],
  [
    'currencies never mix: ZAR out, USD in',
    () => `with e as (insert into ledger.entries (kind) values ('adjustment') returning id)
           insert into ledger.postings (entry_id, account_id, amount)
           select e.id, x.account, x.amount from e, (values ('${f.a}'::uuid, -100::bigint), ('${f.usd}'::uuid, 100::bigint)) x(account, amount)`,
    'PW120',
  ],
  [
    'a posting carries its account currency',
    () => `with e as (insert into ledger.entries (kind) values ('adjustment') returning id)
           insert into ledger.postings (entry_id, account_id, currency, amount) select e.id, '${f.a}', 'USD', 1 from e`,
    'PW104',
  ],
  [
    'an entry written by hand cannot claim it was proved balanced',
    () => `with e as (insert into ledger.entries (kind, balanced_at_write) values ('adjustment', true) returning id)
           insert into ledger.postings (entry_id, account_id, amount) select e.id, '${f.b}', 1000000 from e`,
    'PW120',
  ],
  [
    'postings cannot be added to an entry post_entry wrote, even in its own transaction',
    () => `select ledger.post_entry('adjustment', array[row('${f.a}', -1), row('${f.b}', 1)]::ledger.leg[]);
           insert into ledger.postings (entry_id, account_id, amount)
           select e.id, '${f.b}', 1000000 from ledger.entries e where e.txid = pg_current_xact_id()`,
    'PW121',
  ],
  [
    'a balance cannot be written in the transaction of a posting',
    () => `select ledger.post_entry('adjustment', array[row('${f.a}', -1), row('${f.b}', 1)]::ledger.leg[]);
           update ledger.accounts set balance = balance + 1000000, version = version + 1 where id = '${f.a}'`,
    'PW122',
  ],
  ['postings cannot be added to a committed entry', () => `insert into ledger.postings (entry_id, account_id, amount) values ('${f.entry}', '${f.b}', 5)`, 'PW121'],
  [
    'a wallet cannot be overdrawn, even by a balanced entry',
    () => `select ledger.post_entry('adjustment', array[row('${f.a}', -100000), row('${f.b}', 100000)]::ledger.leg[])`,
    'PW101',
  ],
  [
    'held money cannot be spent (available = balance - held)',
    () => `select ledger.post_entry('adjustment', array[row('${f.a}', -701), row('${f.b}', 701)]::ledger.leg[])`,
    'PW101',
  ],
  ['a hold cannot exceed the available balance', () => `insert into ledger.holds (account_id, amount, expires_at) values ('${f.a}', 701, now() + interval '1 day')`, 'PW101'],
  [
    'a frozen wallet cannot be debited',
    () => `select ledger.post_entry('adjustment', array[row('${f.frozen}', -1), row('${f.b}', 1)]::ledger.leg[])`,
    'PW102',
  ],
  ['a frozen wallet cannot get new holds', () => `select ledger.place_hold('${f.frozen}', 1, now() + interval '1 day')`, 'PW102'],
  [
    'a hold cannot be marked captured without its entry',
    () => `update ledger.holds set status = 'captured', captured_amount = 200, capture_entry_id = '${f.entry}' where id = '${f.hold}'`,
    'PW120',
  ],
  [
    'new accounts start empty (a supplied balance is ignored, so money cannot appear)',
    () => `insert into ledger.accounts (kind, currency, shard, balance) values ('fees', 'ZAR', 32000, 1000000);
           do $$ begin if (select balance from ledger.accounts where kind = 'fees' and shard = 32000) <> 0 then
             raise exception 'money appeared' using errcode = 'XX001'; end if;
             raise exception 'checked' using errcode = 'XX002'; end $$`,
    'XX002',
  ],
];

describe.each(ROLES)('as %s', (role) => {
  it.each(attacks)('%s', async (_name, sql, ownerCode) => {
    // Roles other than the owner may not even read the ledger tables.
    expect(await attempt(role, sql())).toBe(role === 'app_owner' ? ownerCode : '42501');
  });
});

describe('after every attack', () => {
  it('nothing changed and the ledger is healthy', async () => {
    expect(await accountState(owner, f.a)).toMatchObject({ balance: 900n, held: 200n, available: 700n, version: 2n });
    expect(await accountState(owner, f.b)).toMatchObject({ balance: 100n, held: 0n });
    expect(await accountState(owner, f.frozen)).toMatchObject({ balance: 500n, frozen: true });
    expect(await ledgerHealth(owner)).toEqual(HEALTHY);
  });

  it('the API roles and the auditor cannot run the ledger functions', async () => {
    for (const role of ROLES.filter((r) => r !== 'app_owner')) {
      expect(await attempt(role, `select ledger.move('adjustment', '${f.b}', '${f.a}', 1)`), role).toBe('42501');
      expect(await attempt(role, `select app_private.transfer('${f.userA}', '${f.a}', 'x@example.com', 1, 'k')`), role).toBe('42501');
    }
  });

  it('the auditor reads the audit views and nothing else', async () => {
    const root = new pg.Client({ connectionString: inject('rootUrl') });
    await root.connect();
    try {
      await root.query('begin');
      await root.query('set local role app_auditor');
      for (const view of ['trial_balance', 'system_balances', 'account_statement', 'balance_drift', 'unbalanced_entries', 'open_holds', 'expired_holds', 'movements']) {
        await root.query(`select * from audit.${view} limit 1`);
      }
      // Every guard trigger is in place and enabled: 17 on the ledger, 1 opening wallets, 2 on the admin log.
      // (Until migration 000016 postings also had _200_apply; post_entry now moves the balances itself.)
      const guards = await root.query(`select table_name || ' ' || trigger_name as t, enabled from audit.ledger_guards order by 1`);
      expect(guards.rows.every((g) => g.enabled)).toBe(true);
      expect(guards.rows.map((g) => g.t)).toEqual([
        'app_private.admin_actions _000_append_only', 'app_private.admin_actions _000_append_only_truncate',
        'app_public.users _500_open_default_wallet',
        'ledger.accounts _000_no_delete', 'ledger.accounts _000_no_truncate', 'ledger.accounts _100_guard', 'ledger.accounts _100_start_empty',
        'ledger.entries _000_append_only', 'ledger.entries _000_append_only_truncate', 'ledger.entries _100_stamp', 'ledger.entries _900_balanced',
        'ledger.holds _000_no_delete', 'ledger.holds _000_no_truncate', 'ledger.holds _100_placed', 'ledger.holds _100_transition',
        'ledger.holds _200_apply', 'ledger.holds _900_capture_backed',
        'ledger.postings _000_append_only', 'ledger.postings _000_append_only_truncate', 'ledger.postings _100_sequence',
      ]);
      await root.query(`select * from audit.largest_movements(now() - interval '1 day', now() + interval '1 day', 5)`);
      await root.query('commit');
    } finally {
      await root.end();
    }
    for (const table of ['ledger.accounts', 'ledger.postings', 'app_public.users', 'app_private.idempotency_records', 'app_public.wallets']) {
      expect(await attempt('app_auditor', `select * from ${table} limit 1`), table).toBe('42501');
    }
    // The API roles cannot read the audit views.
    expect(await attempt('app_user', `select * from audit.trial_balance`)).toBe('42501');
  });
});

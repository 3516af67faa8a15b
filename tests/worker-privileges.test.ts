// Issue 9 §5: the worker connects as app_worker, with EXECUTE on exactly the
// SQL functions its tasks call (sql/worker/grants.sql) and graphile-worker's
// schema, never as the owner. A compromised worker (a hostile payload, a bug)
// tries to mint money and read people's data as app_worker, and is refused.
// Also: audit.ledger_guards and its metric cover the admin log's triggers.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { makeLogger } from '../src/logger.ts';
import { startWorker } from '../src/worker/runner.ts';
import { createUser, ownerPool } from './helpers/ledger.ts';

let owner: pg.Pool;
let worker: pg.Pool;

/** Every schema-qualified SQL function the task sources call, as "schema.name". */
function functionsTasksCall(): string[] {
  const names = new Set<string>();
  // The worker's own tasks, and each domain's tasks (src/<domain>/tasks.ts, e.g. src/voting/tasks.ts).
  const files = [
    ...readdirSync('src/worker/tasks').map((f) => `src/worker/tasks/${f}`),
    'src/worker/heartbeat.ts',
    ...readdirSync('src', { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(`src/${d.name}/tasks.ts`)).map((d) => `src/${d.name}/tasks.ts`),
  ];
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/\b(app_private|app_public|ledger|audit|commerce)\.([a-z_]+)\(/g)) names.add(`${m[1]}.${m[2]}`);
  }
  return [...names].sort();
}

const sqlstate = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

beforeAll(() => {
  owner = ownerPool(2);
  worker = new pg.Pool({ connectionString: inject('workerUrl'), max: 2 });
});
afterAll(async () => {
  await worker.end();
  await owner.end();
});

describe('the worker role', () => {
  it('may execute exactly the functions its tasks call, each SECURITY DEFINER with a pinned search_path', async () => {
    const { rows } = await owner.query(`
      select p.pronamespace::regnamespace::text || '.' || p.proname as fn, p.prosecdef as definer,
             coalesce(array_to_string(p.proconfig, ','), '') like '%search_path=%' as pinned
        from pg_proc p
       where p.pronamespace in ('app_public'::regnamespace, 'app_private'::regnamespace, 'ledger'::regnamespace, 'audit'::regnamespace, 'commerce'::regnamespace)
         and has_function_privilege('app_worker', p.oid, 'EXECUTE')
       order by 1`);
    expect(rows.map((r) => r.fn)).toEqual(functionsTasksCall());
    expect(rows.filter((r) => !r.definer || !r.pinned)).toEqual([]);
  });

  it('is neither the owner nor a superuser, and can create nothing', async () => {
    const { rows } = await owner.query(`
      select r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
             pg_has_role('app_worker', 'app_owner', 'USAGE') as owner_member,
             has_database_privilege('app_worker', current_database(), 'CREATE') as create_schema,
             has_schema_privilege('app_worker', 'app_private', 'CREATE') or has_schema_privilege('app_worker', 'ledger', 'CREATE')
               or has_schema_privilege('app_worker', 'app_public', 'CREATE') or has_schema_privilege('app_worker', 'public', 'CREATE') as create_in_schema
        from pg_roles r where r.rolname = 'app_worker'`);
    expect(rows[0]).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, owner_member: false, create_schema: false, create_in_schema: false });
  });

  it('a compromised worker cannot mint money, read people, or rewrite the admin log', async () => {
    const victim = await createUser(owner, 'worker-victim');
    const { rows: system } = await owner.query(`select ledger.system_account('adjustments', 'ZAR') as id`);
    expect(await sqlstate(worker.query(`select ledger.move('adjustment', $1, $2, 1000000)`, [system[0].id, victim.walletId]))).toBe('42501');
    expect(await sqlstate(worker.query(`select ledger.post_entry('adjustment', array[]::ledger.leg[])`))).toBe('42501');
    expect(await sqlstate(worker.query(`update ledger.accounts set balance = balance + 1000000 where id = $1`, [victim.walletId]))).toBe('42501');
    expect(await sqlstate(worker.query(`insert into ledger.entries (kind) values ('adjustment')`))).toBe('42501');
    expect(await sqlstate(worker.query(`select email from app_public.users limit 1`))).toBe('42501');
    expect(await sqlstate(worker.query(`select ciphertext from app_private.bank_account_numbers limit 1`))).toBe('42501');
    expect(await sqlstate(worker.query(`select * from app_private.admin_actions limit 1`))).toBe('42501');
    expect(await sqlstate(worker.query(`select app_private.grant_admin($1)`, [victim.email]))).toBe('42501');
    expect(await sqlstate(worker.query(`set role app_owner`))).toBe('42501');
    // What it is for still works: its own function and graphile-worker's queue.
    expect(await sqlstate(worker.query(`select ledger.expire_holds(10)`))).toBe('ok');
    expect(await sqlstate(worker.query(`select count(*) from graphile_worker.jobs`))).toBe('ok');
  });

  it('startWorker refuses the owner connection', async () => {
    await expect(startWorker({ connectionString: inject('ownerUrl'), logger: makeLogger('silent'), cron: false })).rejects.toThrow(/owns the database.*app_worker/);
  });
});

describe('audit.ledger_guards', () => {
  it('lists the admin log\'s append-only triggers, and the metric counts one that is switched off', async () => {
    const { rows } = await owner.query(`select trigger_name, enabled from audit.ledger_guards where table_name = 'app_private.admin_actions' order by 1`);
    expect(rows).toEqual([
      { trigger_name: '_000_append_only', enabled: true },
      { trigger_name: '_000_append_only_truncate', enabled: true },
    ]);
    const client = await owner.connect();
    try {
      await client.query('begin');
      const before = (await client.query(`select app_private.metrics_snapshot(true) as s`)).rows[0].s;
      expect(before.ledger_guards_disabled).toBe(0);
      await client.query(`alter table app_private.admin_actions disable trigger _000_append_only`);
      const after = (await client.query(`select app_private.metrics_snapshot(true) as s`)).rows[0].s;
      expect(after.ledger_guards_disabled).toBe(1);
      expect(after.ledger_guards_enabled).toBe(before.ledger_guards_enabled - 1);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });
});

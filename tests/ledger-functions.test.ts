// The ledger's SQL functions: multi-leg entries, holds (place, capture in
// full or in part, release, expire), reversals, system accounts and the
// idempotency records' purge.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTHY, accountState, createUser, fund, ledgerHealth, ownerPool, sqlError, walletOf } from './helpers/ledger.ts';

let db: pg.Pool;
beforeAll(() => {
  db = ownerPool();
});
afterAll(() => db.end());

const one = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows[0];

describe('post_entry', () => {
  it('posts many legs atomically, with per-account sequences and balances after', async () => {
    const [a, b, c] = await Promise.all([createUser(db, 'pe-a'), createUser(db, 'pe-b'), createUser(db, 'pe-c')]);
    await fund(db, a.walletId, 1000);
    const fees = (await one(`select ledger.system_account('fees', 'ZAR') as id`)).id;
    const { id } = await one(
      `select ledger.post_entry('transfer', array[row($1::uuid, -600), row($2::uuid, 300), row($3::uuid, 250), row($4::uuid, 50)]::ledger.leg[], 'split') as id`,
      [a.walletId, b.walletId, c.walletId, fees],
    );
    const postings = await db.query(`select account_id, amount::int, balance_after::int, sequence::int from ledger.postings where entry_id = $1`, [id]);
    expect(postings.rows).toHaveLength(4);
    expect(postings.rows.find((p) => p.account_id === a.walletId)).toMatchObject({ amount: -600, balance_after: 400, sequence: 2 });
    expect(postings.rows.find((p) => p.account_id === b.walletId)).toMatchObject({ amount: 300, balance_after: 300, sequence: 1 });
    expect((await accountState(db, c.walletId)).balance).toBe(250n);
  });

  it('merges legs on one account and refuses bad ones with clear codes, changing nothing', async () => {
    const [a, b] = await Promise.all([createUser(db, 'pe2-a'), createUser(db, 'pe2-b')]);
    await fund(db, a.walletId, 100);
    await one(`select ledger.post_entry('adjustment', array[row($1::uuid, -30), row($1::uuid, -20), row($2::uuid, 50)]::ledger.leg[])`, [a.walletId, b.walletId]);
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 50n, version: 2n });
    const legs = (rows: string) => `select ledger.post_entry('adjustment', array[${rows}]::ledger.leg[])`;
    expect((await sqlError(db.query(legs(`row('${a.walletId}', -5), row('${b.walletId}', 4)`)))).code).toBe('PW120');
    expect((await sqlError(db.query(legs(`row('${a.walletId}', -5), row('${a.walletId}', 5)`)))).code).toBe('PW120');
    expect((await sqlError(db.query(legs(`row('${a.walletId}', 0), row('${b.walletId}', 0)`)))).code).toBe('PW103');
    expect((await sqlError(db.query(legs(`row('${a.walletId}', -5), row(gen_random_uuid(), 5)`)))).code).toBe('PW125');
    expect((await sqlError(db.query(legs(`row('${a.walletId}', -51), row('${b.walletId}', 51)`)))).code).toBe('PW101');
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 50n, version: 2n });
  });
});

describe('holds', () => {
  it('place reduces available; capture in part moves only what was captured', async () => {
    const a = await createUser(db, 'hold-a');
    await fund(db, a.walletId, 1000);
    const inFlight = (await one(`select ledger.system_account('withdrawals_in_flight', 'ZAR') as id`)).id;
    const hold = (await one(`select ledger.place_hold($1, 600, now() + interval '1 hour', 'withdrawal') as id`, [a.walletId])).id;
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 1000n, held: 600n, available: 400n });
    expect((await sqlError(db.query(`select ledger.place_hold($1, 401, now() + interval '1 hour')`, [a.walletId]))).code).toBe('PW101');

    const entry = (await one(`select ledger.capture_hold($1, $2, 'withdrawal', 450) as id`, [hold, inFlight])).id;
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 550n, held: 0n, available: 550n });
    expect(await one(`select status, captured_amount::int, capture_entry_id from ledger.holds where id = $1`, [hold])).toEqual({
      status: 'captured',
      captured_amount: 450,
      capture_entry_id: entry,
    });
    // A closed hold cannot be captured or released again.
    expect((await sqlError(db.query(`select ledger.capture_hold($1, $2, 'withdrawal')`, [hold, inFlight]))).code).toBe('PW113');
    expect((await sqlError(db.query(`select ledger.release_hold($1)`, [hold]))).code).toBe('PW113');
  });

  it('captures in full by default, releases, and refuses bad captures', async () => {
    const a = await createUser(db, 'hold-b');
    const b = await createUser(db, 'hold-b2');
    await fund(db, a.walletId, 500);
    const h1 = (await one(`select ledger.place_hold($1, 200, now() + interval '1 hour') as id`, [a.walletId])).id;
    const h2 = (await one(`select ledger.place_hold($1, 100, now() + interval '1 hour') as id`, [a.walletId])).id;
    expect((await sqlError(db.query(`select ledger.capture_hold($1, $2, 'transfer', 201)`, [h1, b.walletId]))).code).toBe('PW103');
    await one(`select ledger.capture_hold($1, $2, 'transfer')`, [h1, b.walletId]);
    await one(`select ledger.release_hold($1)`, [h2]);
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 300n, held: 0n });
    expect((await accountState(db, b.walletId)).balance).toBe(200n);
    expect((await sqlError(db.query(`select ledger.release_hold(gen_random_uuid())`))).code).toBe('PW112');
    expect((await sqlError(db.query(`select ledger.place_hold($1, 0, now() + interval '1 hour')`, [a.walletId]))).code).toBe('PW103');
    expect((await sqlError(db.query(`select ledger.place_hold($1, 1, now() - interval '1 second')`, [a.walletId]))).code).toBe('PW126');
  });

  it('expires overdue holds, which then cannot be captured', async () => {
    const a = await createUser(db, 'hold-exp');
    await fund(db, a.walletId, 100);
    const hold = (await one(`select ledger.place_hold($1, 80, now() + interval '200 milliseconds') as id`, [a.walletId])).id;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const fees = (await one(`select ledger.system_account('fees', 'ZAR') as id`)).id;
    expect((await sqlError(db.query(`select ledger.capture_hold($1, $2, 'fee')`, [hold, fees]))).code).toBe('PW113');
    await one(`select ledger.expire_holds()`);
    expect((await one(`select status from ledger.holds where id = $1`, [hold])).status).toBe('expired');
    expect(await accountState(db, a.walletId)).toMatchObject({ balance: 100n, held: 0n, available: 100n });
    const expired = await db.query(`select hold_id from audit.expired_holds where hold_id = $1`, [hold]);
    expect(expired.rowCount).toBe(1);
  });
});

describe('reverse_entry', () => {
  it('reverses once, never a reversal, and only while the money is there', async () => {
    const [a, b] = await Promise.all([createUser(db, 'rev-a'), createUser(db, 'rev-b')]);
    await fund(db, a.walletId, 1000);
    const entry = (await one(`select ledger.move('transfer', $1, $2, 400, 'oops') as id`, [a.walletId, b.walletId])).id;
    const reversal = (await one(`select ledger.reverse_entry($1) as id`, [entry])).id;
    expect((await accountState(db, a.walletId)).balance).toBe(1000n);
    expect((await accountState(db, b.walletId)).balance).toBe(0n);
    expect(await one(`select kind, reverses_entry_id, memo from ledger.entries where id = $1`, [reversal])).toEqual({
      kind: 'reversal',
      reverses_entry_id: entry,
      memo: 'Reversal of oops',
    });
    expect((await sqlError(db.query(`select ledger.reverse_entry($1)`, [entry]))).code).toBe('PW115');
    expect((await sqlError(db.query(`select ledger.reverse_entry($1)`, [reversal]))).code).toBe('PW115');
    expect((await sqlError(db.query(`select ledger.reverse_entry(gen_random_uuid())`))).code).toBe('PW114');

    // Once B has spent the money, reversing the transfer would overdraw B.
    const second = (await one(`select ledger.move('transfer', $1, $2, 300) as id`, [a.walletId, b.walletId])).id;
    await one(`select ledger.move('transfer', $1, $2, 250)`, [b.walletId, a.walletId]);
    expect((await sqlError(db.query(`select ledger.reverse_entry($1)`, [second]))).code).toBe('PW101');
  });

  it('lets only one of two racing reversals through', async () => {
    const [a, b] = await Promise.all([createUser(db, 'rev2-a'), createUser(db, 'rev2-b')]);
    await fund(db, a.walletId, 100);
    const entry = (await one(`select ledger.move('transfer', $1, $2, 100) as id`, [a.walletId, b.walletId])).id;
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => db.query(`select ledger.reverse_entry($1)`, [entry])));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('PW115');
    expect((await accountState(db, a.walletId)).balance).toBe(100n);
  });
});

describe('system accounts', () => {
  it('are created on demand per currency, in shards that sum to the logical balance', async () => {
    const u = await createUser(db, 'sys');
    const gbp = await walletOf(db, u.userId, 'GBP');
    const before = await db.query(`select count(*)::int as n from ledger.accounts where currency = 'GBP' and kind <> 'user_wallet'`);
    await fund(db, gbp, 700);
    const after = await db.query(`select count(*)::int as n from ledger.accounts where currency = 'GBP' and kind = 'revio_clearing'`);
    expect(after.rows[0].n).toBeGreaterThanOrEqual(Math.max(1, before.rows[0].n));
    const clearing = await one(`select balance::text from audit.system_balances where kind = 'revio_clearing' and currency = 'GBP'`);
    expect(BigInt(clearing.balance)).toBeLessThanOrEqual(-700n);
    // One session keeps to one shard; the shard count is a session setting.
    const client = await db.connect();
    try {
      const x = (await client.query(`select ledger.system_account('fees', 'GBP') as id`)).rows[0].id;
      const y = (await client.query(`select ledger.system_account('fees', 'GBP') as id`)).rows[0].id;
      expect(x).toBe(y);
      await client.query(`set ledger.system_shards = 1`);
      const single = (await client.query(`select ledger.system_account('fees', 'GBP') as id`)).rows[0].id;
      expect((await client.query(`select shard from ledger.accounts where id = $1`, [single])).rows[0].shard).toBe(0);
      await client.query(`reset ledger.system_shards`);
    } finally {
      client.release();
    }
    expect((await sqlError(db.query(`select ledger.system_account('fees', 'XYZ')`))).code).toBe('PW105');
  });
});

describe('idempotency records', () => {
  it('are purged after the retention window, and only then', async () => {
    const u = await createUser(db, 'purge');
    const v = await createUser(db, 'purge-to');
    await fund(db, u.walletId, 100);
    await one(`select app_private.transfer($1, $2, $3, 10, 'old-key')`, [u.userId, u.walletId, v.email]);
    await one(`select app_private.transfer($1, $2, $3, 10, 'new-key')`, [u.userId, u.walletId, v.email]);
    // Age one record by hand (the owner may; records are not ledger history).
    await db.query(`update app_private.idempotency_records set created_at = now() - interval '8 days' where caller = $1 and key = 'old-key'`, [`user:${u.userId}`]);
    const purged = await one(`select app_private.purge_idempotency_records('7 days') as n`);
    expect(Number(purged.n)).toBeGreaterThanOrEqual(1);
    const left = await db.query(`select key from app_private.idempotency_records where caller = $1 order by key`, [`user:${u.userId}`]);
    expect(left.rows.map((r) => r.key)).toEqual(['new-key']);
  });
});

it('leaves the ledger healthy', async () => {
  expect(await ledgerHealth(db)).toEqual(HEALTHY);
});

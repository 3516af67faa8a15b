// The ledger under concurrent writers: no overdraft, no deadlock, no lost
// update, and idempotent requests that race still make one entry.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTHY, accountState, createUser, fund, ledgerHealth, ownerPool, type LedgerUser } from './helpers/ledger.ts';

let db: pg.Pool;
beforeAll(() => {
  db = ownerPool(24);
});
afterAll(() => db.end());

/** Runs the promises and returns the SQLSTATE of each failure (or 'ok'). */
async function outcomes(tasks: (() => Promise<unknown>)[]): Promise<string[]> {
  const settled = await Promise.allSettled(tasks.map((task) => task()));
  return settled.map((s) => (s.status === 'fulfilled' ? 'ok' : ((s.reason as { code?: string }).code ?? String(s.reason))));
}

async function sumOfPostings(accountId: string): Promise<bigint> {
  const { rows } = await db.query(`select coalesce(sum(amount), 0)::text as total from ledger.postings where account_id = $1`, [accountId]);
  return BigInt(rows[0].total);
}

describe('draining one wallet', () => {
  it('50 parallel transfers and hold-based withdrawals never overdraw it, and the final balance is exact', async () => {
    const source = await createUser(db, 'drain');
    const sinks = await Promise.all(Array.from({ length: 5 }, (_, i) => createUser(db, `drain-sink${i}`)));
    await fund(db, source.walletId, 1000);
    const inFlight = (await db.query(`select ledger.system_account('withdrawals_in_flight', 'ZAR') as id`)).rows[0].id;

    const TRANSFER = 37;
    const WITHDRAWAL = 41;
    const tasks = Array.from({ length: 50 }, (_, i) =>
      i % 2 === 0
        ? () => db.query(`select app_private.transfer($1, $2, $3, $4, $5)`, [source.userId, source.walletId, sinks[i % 5].email, TRANSFER, `drain-${i}`])
        : async () => {
            // A withdrawal: hold first (as the request does), capture when the payout succeeds.
            const { rows } = await db.query(`select ledger.place_hold($1, $2, now() + interval '1 hour', 'withdrawal') as id`, [source.walletId, WITHDRAWAL]);
            await db.query(`select ledger.capture_hold($1, $2, 'withdrawal')`, [rows[0].id, inFlight]);
          },
    );
    const results = await outcomes(tasks);
    // The only refusal is INSUFFICIENT_FUNDS (no deadlock, no other error).
    expect(results.filter((r) => r !== 'ok' && r !== 'PW101')).toEqual([]);

    const transfers = results.filter((r, i) => r === 'ok' && i % 2 === 0).length;
    const withdrawals = results.filter((r, i) => r === 'ok' && i % 2 === 1).length;
    const expected = 1000n - BigInt(transfers * TRANSFER + withdrawals * WITHDRAWAL);
    const state = await accountState(db, source.walletId);
    expect(state).toMatchObject({ balance: expected, held: 0n });
    expect(state.balance).toBeGreaterThanOrEqual(0n);
    // Demand (1950) exceeds the funds and available only ever fell, so once
    // anything was refused the rest is less than the larger operation.
    expect(state.balance).toBeLessThan(BigInt(WITHDRAWAL));
    expect(await sumOfPostings(source.walletId)).toBe(expected);
    expect(state.version).toBe(BigInt(1 + transfers + withdrawals));
  });
});

describe('opposite transfers', () => {
  it('A→B and B→A in parallel never deadlock and lose nothing', async () => {
    const [a, b] = await Promise.all([createUser(db, 'dl-a'), createUser(db, 'dl-b')]);
    await fund(db, a.walletId, 10_000);
    await fund(db, b.walletId, 10_000);
    const tasks = Array.from({ length: 120 }, (_, i) => {
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
      return () => db.query(`select app_private.transfer($1, $2, $3, $4, $5)`, [from.userId, from.walletId, to.email, 1 + (i % 7), `dl-${i}`]);
    });
    const results = await outcomes(tasks);
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
    const sent = (parity: number) => tasks.reduce((sum, _t, i) => (i % 2 === parity ? sum + 1 + (i % 7) : sum), 0);
    const expectedA = 10_000n - BigInt(sent(0)) + BigInt(sent(1));
    expect((await accountState(db, a.walletId)).balance).toBe(expectedA);
    expect((await accountState(db, b.walletId)).balance).toBe(20_000n - expectedA);
  });
});

describe('many transfers among a few wallets', () => {
  it('keeps every balance equal to its postings, none negative, and the trial balance at zero', async () => {
    const users: LedgerUser[] = await Promise.all(Array.from({ length: 5 }, (_, i) => createUser(db, `mesh${i}`)));
    for (const u of users) await fund(db, u.walletId, 500);
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const tasks = Array.from({ length: 200 }, (_, i) => {
      const from = users[Math.floor(random() * 5)];
      let to = users[Math.floor(random() * 5)];
      if (to === from) to = users[(users.indexOf(from) + 1) % 5];
      const amount = 1 + Math.floor(random() * 120);
      return () => db.query(`select app_private.transfer($1, $2, $3, $4, $5)`, [from.userId, from.walletId, to.email, amount, `mesh-${i}`]);
    });
    const results = await outcomes(tasks);
    expect(results.filter((r) => r !== 'ok' && r !== 'PW101')).toEqual([]);
    let total = 0n;
    for (const u of users) {
      const state = await accountState(db, u.walletId);
      expect(state.balance).toBeGreaterThanOrEqual(0n);
      expect(await sumOfPostings(u.walletId)).toBe(state.balance);
      total += state.balance;
    }
    expect(total).toBe(2500n); // money only moved between them
    expect(await ledgerHealth(db)).toEqual(HEALTHY);
  });
});

describe('idempotency under races', () => {
  it('20 identical requests at once make one entry and all get it', async () => {
    const [a, b] = await Promise.all([createUser(db, 'idem-a'), createUser(db, 'idem-b')]);
    await fund(db, a.walletId, 1000);
    const key = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => db.query(`select * from app_private.transfer($1, $2, $3, 100, $4, 'once')`, [a.userId, a.walletId, b.email, key])),
    );
    expect(new Set(results.map((r) => r.rows[0].id)).size).toBe(1);
    expect((await accountState(db, a.walletId)).balance).toBe(900n);
    const entries = await db.query(`select count(*)::int as n from ledger.entries where idempotency_ref = $1`, [`user:${a.userId}/${key}`]);
    expect(entries.rows[0].n).toBe(1);
  });

  it('20 different requests racing for one key: one wins, the rest get IDEMPOTENCY_KEY_REUSED', async () => {
    const [a, b] = await Promise.all([createUser(db, 'idem2-a'), createUser(db, 'idem2-b')]);
    await fund(db, a.walletId, 1000);
    const key = randomUUID();
    const results = await outcomes(
      Array.from({ length: 20 }, (_, i) => () => db.query(`select app_private.transfer($1, $2, $3, $4, $5)`, [a.userId, a.walletId, b.email, 10 + i, key])),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'PW109')).toHaveLength(19);
    expect((await accountState(db, b.walletId)).balance).toBeGreaterThanOrEqual(10n);
  });

  it('a request whose first attempt failed can succeed when repeated', async () => {
    const [a, b] = await Promise.all([createUser(db, 'idem3-a'), createUser(db, 'idem3-b')]);
    const key = randomUUID();
    const first = await outcomes([() => db.query(`select app_private.transfer($1, $2, $3, 100, $4)`, [a.userId, a.walletId, b.email, key])]);
    expect(first).toEqual(['PW101']);
    await fund(db, a.walletId, 100);
    await db.query(`select app_private.transfer($1, $2, $3, 100, $4)`, [a.userId, a.walletId, b.email, key]);
    expect((await accountState(db, b.walletId)).balance).toBe(100n);
  });
});

// A randomized property test: thousands of random operations against the
// ledger's SQL functions, each checked against a model kept here (outcome and
// error code included), and after every batch: the trial balance is zero, no
// account drifts, no wallet is negative, and every wallet equals the model.
// Seeded, so a failure reproduces: LEDGER_PROPERTY_SEED=<seed> npx vitest run tests/ledger-property.test.ts
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HEALTHY, createUser, fund, ledgerHealth, ownerPool, walletOf, type LedgerUser } from './helpers/ledger.ts';

const SEED = Number(process.env.LEDGER_PROPERTY_SEED ?? Date.now() % 1_000_000);
const OPERATIONS = 2000;
const BATCH = 250;

/** mulberry32: small, fast, good enough to drive a test. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] };
}

interface ModelWallet {
  id: string;
  user: LedgerUser;
  currency: string;
  balance: bigint;
  held: bigint;
  frozen: boolean;
}
interface ModelHold {
  id: string;
  wallet: ModelWallet;
  amount: bigint;
  open: boolean;
}
interface ModelTransfer {
  entryId: string;
  from: ModelWallet;
  to: ModelWallet;
  amount: bigint;
  reversed: boolean;
}

let db: pg.Pool;
let client: pg.PoolClient;
beforeAll(async () => {
  db = ownerPool(4);
  client = await db.connect();
});
afterAll(async () => {
  client.release();
  await db.end();
});

async function attempt(sql: string, params: unknown[]): Promise<{ code: string; row?: any }> {
  try {
    const { rows } = await client.query(sql, params);
    return { code: 'ok', row: rows[0] };
  } catch (error) {
    return { code: (error as { code?: string }).code ?? String(error) };
  }
}

it(`random operations keep the ledger equal to the model (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const r = rng(SEED);
  const users = await Promise.all(Array.from({ length: 6 }, (_, i) => createUser(db, `prop${i}`)));
  const wallets: ModelWallet[] = users.map((user) => ({ id: user.walletId, user, currency: 'ZAR', balance: 0n, held: 0n, frozen: false }));
  for (const user of users.slice(0, 3)) {
    wallets.push({ id: await walletOf(db, user.userId, 'USD'), user, currency: 'USD', balance: 0n, held: 0n, frozen: false });
  }
  const holds: ModelHold[] = [];
  const transfers: ModelTransfer[] = [];
  const available = (w: ModelWallet) => w.balance - w.held;
  const counts: Record<string, number> = {};

  for (let op = 1; op <= OPERATIONS; op++) {
    const kind = r.pick(['deposit', 'transfer', 'transfer', 'transfer', 'hold', 'capture', 'release', 'reverse', 'freeze', 'fee']);
    const context = `op ${op} (${kind}), seed ${SEED}`;
    const w = r.pick(wallets);
    const amount = BigInt(r.int(1, 400));
    let expected = 'ok';
    let result: { code: string; row?: any };
    switch (kind) {
      case 'deposit': {
        result = await attempt(`select ledger.move('deposit', ledger.system_account('revio_clearing', $2), $1, $3) as id`, [w.id, w.currency, amount]);
        if (result.code === 'ok') w.balance += amount;
        break;
      }
      case 'transfer': {
        const candidates = wallets.filter((x) => x.user !== w.user && x.currency === w.currency);
        const to = r.pick(candidates);
        expected = w.frozen ? 'PW102' : available(w) < amount ? 'PW101' : 'ok';
        result = await attempt(`select (app_private.transfer($1, $2, $3, $4, $5)).id`, [w.user.userId, w.id, to.user.email, amount, `prop-${SEED}-${op}`]);
        if (result.code === 'ok') {
          w.balance -= amount;
          to.balance += amount;
          transfers.push({ entryId: result.row.id, from: w, to, amount, reversed: false });
        }
        break;
      }
      case 'hold': {
        expected = w.frozen ? 'PW102' : available(w) < amount ? 'PW101' : 'ok';
        result = await attempt(`select ledger.place_hold($1, $2, now() + interval '1 day') as id`, [w.id, amount]);
        if (result.code === 'ok') {
          w.held += amount;
          holds.push({ id: result.row.id, wallet: w, amount, open: true });
        }
        break;
      }
      case 'capture': {
        const hold = holds.length ? r.pick(holds) : undefined;
        if (!hold) continue;
        const part = BigInt(r.int(1, Number(hold.amount)));
        expected = !hold.open ? 'PW113' : hold.wallet.frozen ? 'PW102' : 'ok';
        result = await attempt(`select ledger.capture_hold($1, ledger.system_account('withdrawals_in_flight', $2), 'withdrawal', $3)`, [hold.id, hold.wallet.currency, part]);
        if (result.code === 'ok') {
          hold.open = false;
          hold.wallet.held -= hold.amount;
          hold.wallet.balance -= part;
        }
        break;
      }
      case 'release': {
        const hold = holds.length ? r.pick(holds) : undefined;
        if (!hold) continue;
        expected = hold.open ? 'ok' : 'PW113';
        result = await attempt(`select ledger.release_hold($1)`, [hold.id]);
        if (result.code === 'ok') {
          hold.open = false;
          hold.wallet.held -= hold.amount;
        }
        break;
      }
      case 'reverse': {
        const t = transfers.length ? r.pick(transfers) : undefined;
        if (!t) continue;
        // The reversal debits the recipient.
        expected = t.reversed ? 'PW115' : t.to.frozen ? 'PW102' : available(t.to) < t.amount ? 'PW101' : 'ok';
        result = await attempt(`select ledger.reverse_entry($1)`, [t.entryId]);
        if (result.code === 'ok') {
          t.reversed = true;
          t.to.balance -= t.amount;
          t.from.balance += t.amount;
        }
        break;
      }
      case 'freeze': {
        result = await attempt(`select ledger.set_frozen($1, $2)`, [w.id, !w.frozen]);
        if (result.code === 'ok') w.frozen = !w.frozen;
        break;
      }
      case 'fee': {
        expected = w.frozen ? 'PW102' : available(w) < amount ? 'PW101' : 'ok';
        result = await attempt(`select app_private.pay_fee($1, $2, $3, $4)`, [w.user.userId, w.id, amount, `prop-fee-${SEED}-${op}`]);
        if (result.code === 'ok') w.balance -= amount;
        break;
      }
      default:
        throw new Error(kind);
    }
    expect(result.code, context).toBe(expected);
    counts[`${kind}:${result.code}`] = (counts[`${kind}:${result.code}`] ?? 0) + 1;

    if (op % BATCH === 0) {
      expect(await ledgerHealth(client), `after ${context}`).toEqual(HEALTHY);
      const { rows } = await client.query(`select id, balance::text, held::text, frozen from ledger.accounts where id = any($1)`, [wallets.map((x) => x.id)]);
      for (const model of wallets) {
        const row = rows.find((x) => x.id === model.id);
        expect({ balance: BigInt(row.balance), held: BigInt(row.held), frozen: row.frozen }, `${model.id} after ${context}`).toEqual({
          balance: model.balance,
          held: model.held,
          frozen: model.frozen,
        });
      }
    }
  }
  // The mix really exercised both successes and refusals.
  expect(counts['transfer:ok']).toBeGreaterThan(50);
  expect(counts['transfer:PW101'] ?? 0).toBeGreaterThan(0);
  expect(counts['capture:ok']).toBeGreaterThan(10);
  expect(counts['reverse:ok']).toBeGreaterThan(10);
});

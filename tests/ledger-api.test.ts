// The wallet API over real HTTP: default wallet, openWallet, transfer with its
// idempotency and every refusal, and the transactions connection.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, startTestApi, type TestApi } from './helpers/api.ts';
import { accountState, fund, ownerPool } from './helpers/ledger.ts';

let api: TestApi;
let db: pg.Pool;
beforeAll(async () => {
  api = await startTestApi();
  db = ownerPool();
});
afterAll(async () => {
  await api.close();
  await db.end();
});

const WALLET_FIELDS = 'rowId currency balance availableBalance heldBalance frozen';
const WALLETS = `{ allWallets { nodes { ${WALLET_FIELDS} } } }`;
const OPEN_WALLET = `mutation($currency: String!) { openWallet(input: { currency: $currency }) { result { ${WALLET_FIELDS} } } }`;
const TRANSFER = `mutation($input: TransferInput!) {
  transfer(input: $input) { result { rowId amount currency memo createdAt fromWalletId toWalletId recipientName } }
}`;
const TRANSACTIONS = `query($id: UUID!, $first: Int, $after: Cursor, $condition: WalletTransactionCondition) {
  walletByRowId(rowId: $id) {
    transactions(first: $first, after: $after, condition: $condition) {
      nodes { sequence amount kind memo counterpartyName balanceAfter occurredAt entryId }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

async function userWithWallet(label: string, funds = 0) {
  const session = await registerUser(api, label);
  const wallets = await api.graphql(WALLETS, {}, session.accessToken);
  const wallet = wallets.data.allWallets.nodes[0];
  if (funds > 0) await fund(db, wallet.rowId, funds);
  return { ...session, walletId: wallet.rowId as string, token: session.accessToken };
}

describe('wallets', () => {
  it('gives every new user an empty ZAR wallet, visible only to them', async () => {
    const alice = await userWithWallet('w-alice');
    const bob = await userWithWallet('w-bob');
    const wallets = await api.graphql(WALLETS, {}, alice.token);
    expect(wallets.data.allWallets.nodes).toEqual([
      { rowId: alice.walletId, currency: 'ZAR', balance: '0', availableBalance: '0', heldBalance: '0', frozen: false },
    ]);
    const foreign = await api.graphql(`query($id: UUID!) { walletByRowId(rowId: $id) { rowId } }`, { id: bob.walletId }, alice.token);
    expect(foreign.data.walletByRowId).toBeNull();
    const anonymous = await api.graphql(WALLETS);
    expect(anonymous.errors?.length).toBeGreaterThan(0);
  });

  it('opens a wallet per currency, once, and refuses unknown currencies', async () => {
    const carol = await userWithWallet('w-carol');
    const opened = await api.graphql(OPEN_WALLET, { currency: 'usd' }, carol.token);
    expect(opened.data.openWallet.result).toMatchObject({ currency: 'USD', balance: '0', frozen: false });
    const again = await api.graphql(OPEN_WALLET, { currency: 'USD' }, carol.token);
    expect(again.data.openWallet.result.rowId).toBe(opened.data.openWallet.result.rowId);
    for (const currency of ['XXX', 'ZA', '', 'ZARR']) {
      expect(codeOf(await api.graphql(OPEN_WALLET, { currency }, carol.token))).toBe('CURRENCY_INVALID');
    }
    const wallets = await api.graphql(WALLETS, {}, carol.token);
    expect(wallets.data.allWallets.nodes.map((w: { currency: string }) => w.currency).sort()).toEqual(['USD', 'ZAR']);
  });

  it('shows held money separately from what is available', async () => {
    const dave = await userWithWallet('w-dave', 1000);
    await db.query(`select ledger.place_hold($1, 300, now() + interval '1 hour', 'pending withdrawal')`, [dave.walletId]);
    const wallets = await api.graphql(WALLETS, {}, dave.token);
    expect(wallets.data.allWallets.nodes[0]).toMatchObject({ balance: '1000', availableBalance: '700', heldBalance: '300' });
  });
});

describe('transfer', () => {
  it('moves money between two users and returns the entry', async () => {
    const alice = await userWithWallet('t-alice', 5000);
    const bob = await userWithWallet('t-bob');
    const key = randomUUID();
    const result = await api.graphql(
      TRANSFER,
      { input: { fromWalletId: alice.walletId, toEmail: bob.email.toUpperCase(), amount: '1250', idempotencyKey: key, memo: 'Dinner' } },
      alice.token,
    );
    expect(result.errors).toBeUndefined();
    const entry = result.data.transfer.result;
    expect(entry).toMatchObject({ amount: '1250', currency: 'ZAR', memo: 'Dinner', fromWalletId: alice.walletId, toWalletId: bob.walletId, recipientName: 'Test t-bob' });
    expect(entry.rowId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Math.abs(Date.parse(entry.createdAt) - Date.now())).toBeLessThan(60_000);

    expect((await accountState(db, alice.walletId)).balance).toBe(3750n);
    expect((await accountState(db, bob.walletId)).balance).toBe(1250n);

    // The same request again: the first result, and nothing moves.
    const again = await api.graphql(
      TRANSFER,
      { input: { fromWalletId: alice.walletId, toEmail: bob.email, amount: '1250', idempotencyKey: key, memo: 'Dinner' } },
      alice.token,
    );
    expect(again.data.transfer.result).toEqual(entry);
    expect((await accountState(db, alice.walletId)).balance).toBe(3750n);

    // The same key for something else is refused.
    const reused = await api.graphql(
      TRANSFER,
      { input: { fromWalletId: alice.walletId, toEmail: bob.email, amount: '1', idempotencyKey: key, memo: 'Dinner' } },
      alice.token,
    );
    expect(codeOf(reused)).toBe('IDEMPOTENCY_KEY_REUSED');
    // Keys belong to their caller: Bob may use the same string.
    const bobs = await api.graphql(
      TRANSFER,
      { input: { fromWalletId: bob.walletId, toEmail: alice.email, amount: '250', idempotencyKey: key } },
      bob.token,
    );
    expect(bobs.data.transfer.result.amount).toBe('250');
  });

  it('makes one entry out of 20 identical requests racing', async () => {
    const alice = await userWithWallet('race-alice', 1000);
    const bob = await userWithWallet('race-bob');
    const input = { fromWalletId: alice.walletId, toEmail: bob.email, amount: '100', idempotencyKey: `race-${randomUUID()}` };
    const results = await Promise.all(Array.from({ length: 20 }, () => api.graphql(TRANSFER, { input }, alice.token)));
    for (const result of results) expect(result.errors).toBeUndefined();
    expect(new Set(results.map((r) => r.data.transfer.result.rowId)).size).toBe(1);
    expect((await accountState(db, alice.walletId)).balance).toBe(900n);
    expect((await accountState(db, bob.walletId)).balance).toBe(100n);
  });

  describe('refuses bad requests with a stable code and changes nothing', () => {
    let alice: Awaited<ReturnType<typeof userWithWallet>>;
    let bob: Awaited<ReturnType<typeof userWithWallet>>;
    let noUsdRecipient: string;
    let aliceUsd: string;
    beforeAll(async () => {
      alice = await userWithWallet('bad-alice', 1000);
      bob = await userWithWallet('bad-bob', 1000);
      const opened = await api.graphql(OPEN_WALLET, { currency: 'USD' }, alice.token);
      aliceUsd = opened.data.openWallet.result.rowId;
      await fund(db, aliceUsd, 1000);
      noUsdRecipient = bob.email; // bob has no USD wallet
    });

    const cases: [string, string, () => Record<string, unknown>][] = [
      ['zero amount', 'AMOUNT_INVALID', () => ({ amount: '0' })],
      ['negative amount', 'AMOUNT_INVALID', () => ({ amount: '-5' })],
      ['non-integer amount', 'AMOUNT_INVALID', () => ({ amount: '1.5' })],
      ['not a number', 'AMOUNT_INVALID', () => ({ amount: 'ten' })],
      ['absurdly large amount (beyond bigint)', 'AMOUNT_INVALID', () => ({ amount: '100000000000000000000000' })],
      ['absurdly large amount (within bigint)', 'AMOUNT_INVALID', () => ({ amount: '9223372036854775807' })],
      ['more than the balance', 'INSUFFICIENT_FUNDS', () => ({ amount: '1001' })],
      ['wrong currency for the recipient', 'CURRENCY_MISMATCH', () => ({ fromWalletId: aliceUsd, toEmail: noUsdRecipient })],
      ['unknown wallet', 'WALLET_NOT_FOUND', () => ({ fromWalletId: randomUUID() })],
      ["someone else's wallet", 'WALLET_NOT_FOUND', () => ({ fromWalletId: bob.walletId })],
      ['transfer to oneself', 'TRANSFER_TO_SELF', () => ({ toEmail: alice.email })],
      ['unknown recipient', 'RECIPIENT_NOT_FOUND', () => ({ toEmail: 'nobody-here@example.com' })],
      ['missing idempotency key', 'IDEMPOTENCY_KEY_INVALID', () => ({ idempotencyKey: '' })],
      ['overlong idempotency key', 'IDEMPOTENCY_KEY_INVALID', () => ({ idempotencyKey: 'k'.repeat(201) })],
      ['overlong memo', 'MEMO_INVALID', () => ({ memo: 'm'.repeat(141) })],
    ];
    it.each(cases)('%s → %s', async (_name, code, override) => {
      const before = await db.query(`select id, balance, version from ledger.accounts where id = any($1) order by id`, [[alice.walletId, aliceUsd, bob.walletId]]);
      const input = { fromWalletId: alice.walletId, toEmail: bob.email, amount: '100', idempotencyKey: randomUUID(), memo: 'x', ...override() };
      const result = await api.graphql(TRANSFER, { input }, alice.token);
      expect(codeOf(result), JSON.stringify(result.errors)).toBe(code);
      expect(result.data?.transfer ?? null).toBeNull();
      const after = await db.query(`select id, balance, version from ledger.accounts where id = any($1) order by id`, [[alice.walletId, aliceUsd, bob.walletId]]);
      expect(after.rows).toEqual(before.rows);
      const records = await db.query(`select count(*)::int as n from app_private.idempotency_records where key = $1`, [String(input.idempotencyKey)]);
      expect(records.rows[0].n).toBe(0);
    });

    it('refuses a frozen wallet with WALLET_FROZEN, and visitors with PERMISSION_DENIED', async () => {
      const frozen = await userWithWallet('bad-frozen', 500);
      await db.query(`select ledger.set_frozen($1, true)`, [frozen.walletId]);
      const input = { fromWalletId: frozen.walletId, toEmail: bob.email, amount: '100', idempotencyKey: randomUUID() };
      expect(codeOf(await api.graphql(TRANSFER, { input }, frozen.token))).toBe('WALLET_FROZEN');
      expect(codeOf(await api.graphql(TRANSFER, { input }))).toBe('PERMISSION_DENIED');
      expect((await accountState(db, frozen.walletId)).balance).toBe(500n);
      // Frozen wallets still receive.
      const incoming = await api.graphql(TRANSFER, { input: { fromWalletId: bob.walletId, toEmail: frozen.email, amount: '5', idempotencyKey: randomUUID() } }, bob.token);
      expect(incoming.errors).toBeUndefined();
    });
  });
});

describe('transactions', () => {
  it('lists a wallet newest first with cursors, amounts, counterparties and balances', async () => {
    const alice = await userWithWallet('h-alice', 10_000);
    const bob = await userWithWallet('h-bob');
    for (let i = 1; i <= 5; i++) {
      const r = await api.graphql(TRANSFER, { input: { fromWalletId: alice.walletId, toEmail: bob.email, amount: String(i * 100), idempotencyKey: randomUUID(), memo: `t${i}` } }, alice.token);
      expect(r.errors).toBeUndefined();
    }
    const page1 = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 4 }, alice.token);
    const list1 = page1.data.walletByRowId.transactions;
    expect(list1.nodes.map((n: any) => [n.sequence, n.amount, n.kind, n.memo, n.counterpartyName, n.balanceAfter])).toEqual([
      ['6', '-500', 'transfer', 't5', 'Test h-bob', '8500'],
      ['5', '-400', 'transfer', 't4', 'Test h-bob', '9000'],
      ['4', '-300', 'transfer', 't3', 'Test h-bob', '9400'],
      ['3', '-200', 'transfer', 't2', 'Test h-bob', '9700'],
    ]);
    expect(list1.pageInfo.hasNextPage).toBe(true);

    // A new transfer between pages does not shift the next page.
    await api.graphql(TRANSFER, { input: { fromWalletId: alice.walletId, toEmail: bob.email, amount: '1', idempotencyKey: randomUUID() } }, alice.token);
    const page2 = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 4, after: list1.pageInfo.endCursor }, alice.token);
    const list2 = page2.data.walletByRowId.transactions;
    expect(list2.nodes.map((n: any) => [n.sequence, n.amount, n.kind, n.counterpartyName, n.balanceAfter])).toEqual([
      ['2', '-100', 'transfer', 'Test h-bob', '9900'],
      ['1', '10000', 'deposit', 'Revio', '10000'],
    ]);
    expect(list2.pageInfo.hasNextPage).toBe(false);

    const bobs = await api.graphql(TRANSACTIONS, { id: bob.walletId, first: 1 }, bob.token);
    expect(bobs.data.walletByRowId.transactions.nodes[0]).toMatchObject({ amount: '1', counterpartyName: 'Test h-alice', balanceAfter: '1501' });
    // Alice cannot read Bob's history.
    const foreign = await api.graphql(TRANSACTIONS, { id: bob.walletId, first: 10 }, alice.token);
    expect(foreign.data.walletByRowId).toBeNull();
  });

  it('filters on kind and on a time range', async () => {
    const alice = await userWithWallet('f-alice', 1000);
    const bob = await userWithWallet('f-bob');
    await api.graphql(TRANSFER, { input: { fromWalletId: alice.walletId, toEmail: bob.email, amount: '10', idempotencyKey: randomUUID() } }, alice.token);
    const deposits = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 10, condition: { kind: 'deposit' } }, alice.token);
    expect(deposits.errors).toBeUndefined();
    expect(deposits.data.walletByRowId.transactions.nodes.map((n: any) => n.amount)).toEqual(['1000']);

    const all = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 10 }, alice.token);
    const [latest, first] = all.data.walletByRowId.transactions.nodes;
    const from = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 10, condition: { occurredFrom: latest.occurredAt } }, alice.token);
    expect(from.data.walletByRowId.transactions.nodes.map((n: any) => n.sequence)).toEqual(['2']);
    const before = await api.graphql(TRANSACTIONS, { id: alice.walletId, first: 10, condition: { occurredBefore: latest.occurredAt } }, alice.token);
    expect(before.data.walletByRowId.transactions.nodes.map((n: any) => n.sequence)).toEqual([first.sequence]);
    const none = await api.graphql(
      TRANSACTIONS,
      { id: alice.walletId, first: 10, condition: { occurredFrom: '2000-01-01T00:00:00Z', occurredBefore: '2000-01-02T00:00:00Z' } },
      alice.token,
    );
    expect(none.data.walletByRowId.transactions.nodes).toEqual([]);
  });
});

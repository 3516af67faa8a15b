// GDPR erasure: deleteMyAccount pseudonymises the person while the ledger
// keeps every entry and balance; only at zero (or by an admin).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { grantAdmin } from '../src/cli/admin-grant.ts';
import { encryptAccountNumber, generateBankAccountKey, parseBankAccountKey } from '../src/payments/bank-crypto.ts';
import { PASSWORD, registerUser, startTestApi, type TestApi } from './helpers/api.ts';
import { HEALTHY, fund, ledgerHealth, ownerPool, walletOf } from './helpers/ledger.ts';

let api: TestApi;
let owner: pg.Pool;

const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;
const DELETE = 'mutation { deleteMyAccount(input: {}) { result } }';

async function signedUp(label: string) {
  const person = await registerUser(api, label);
  return { ...person, walletId: await walletOf(owner, person.user.rowId) };
}

async function login(email: string) {
  return api.graphql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, { i: { email, password: PASSWORD } });
}

beforeAll(async () => {
  owner = ownerPool(4);
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
  await owner.end();
});

describe('deleteMyAccount', () => {
  it('is refused while money is left, and allowed at zero; the ledger keeps its entries and the trial balance stays zero', async () => {
    const erin = await signedUp('erin');
    const frank = await signedUp('frank');
    // A saved bank account (with an encrypted number) and some history.
    const key = parseBankAccountKey(generateBankAccountKey());
    await owner.query(
      `insert into app_public.bank_accounts (id, user_id, account_holder, bank_name, branch_code, account_type, account_number_last4)
       values (uuidv7(), $1, 'Erin Example', 'FNB', '250655', 'cheque', '3456') returning id`,
      [erin.user.rowId],
    ).then(({ rows }) =>
      owner.query(`insert into app_private.bank_account_numbers (bank_account_id, ciphertext) values ($1, $2)`, [
        rows[0].id,
        encryptAccountNumber(key, erin.user.rowId, '62000123456'),
      ]),
    );
    await fund(owner, erin.walletId, 2500);
    expect(codeOf(await api.graphql(DELETE, {}, erin.accessToken))).toBe('ACCOUNT_NOT_EMPTY');

    // Spend it all: a transfer to Frank empties the wallet.
    const sent = await api.graphql(
      `mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`,
      { i: { fromWalletId: erin.walletId, toEmail: frank.email, amount: '2500', idempotencyKey: 'all-of-it' } },
      erin.accessToken,
    );
    expect(sent.errors).toBeUndefined();
    const postingsBefore = (await owner.query(`select count(*)::int as n from ledger.postings where account_id = $1`, [erin.walletId])).rows[0].n;

    const deleted = await api.graphql(DELETE, {}, erin.accessToken);
    expect(deleted.data.deleteMyAccount.result).toBe(true);

    // Pseudonymised, not deleted; secrets and sessions gone.
    const { rows: users } = await owner.query(`select email::text, full_name, erased_at from app_public.users where id = $1`, [erin.user.rowId]);
    expect(users[0].email).toMatch(/^erased-[0-9a-f]{24}@erased\.invalid$/);
    expect(users[0].full_name).toBe('Erased user');
    expect(users[0].erased_at).toBeInstanceOf(Date);
    const leftovers = await owner.query(
      `select (select count(*) from app_private.user_secrets where user_id = $1)::int as secrets,
              (select count(*) from app_private.sessions where user_id = $1 and revoked_at is null)::int as live_sessions,
              (select count(*) from app_private.refresh_tokens t join app_private.sessions s on s.id = t.session_id where s.user_id = $1)::int as refresh_tokens,
              (select count(*) from app_private.login_attempts where email = $2)::int as attempts,
              (select count(*) from app_private.bank_account_numbers n join app_public.bank_accounts b on b.id = n.bank_account_id where b.user_id = $1)::int as numbers,
              (select string_agg(account_holder || bank_name, ',') from app_public.bank_accounts where user_id = $1) as bank`,
      [erin.user.rowId, erin.email],
    );
    expect(leftovers.rows[0]).toEqual({ secrets: 0, live_sessions: 0, refresh_tokens: 0, attempts: 0, numbers: 0, bank: 'ErasedErased' });

    // Cannot sign in, the old token is dead, nobody can find the email.
    expect(codeOf(await login(erin.email))).toBe('INVALID_CREDENTIALS');
    expect((await api.graphql('{ currentUser { rowId } }', {}, erin.accessToken)).data.currentUser).toBeNull();
    const toErased = await api.graphql(
      `mutation($i: TransferInput!) { transfer(input: $i) { result { rowId } } }`,
      { i: { fromWalletId: frank.walletId, toEmail: erin.email, amount: '1', idempotencyKey: 'to-erased' } },
      frank.accessToken,
    );
    expect(codeOf(toErased)).toBe('RECIPIENT_NOT_FOUND');

    // The ledger keeps everything; Frank's history names an erased user.
    const postingsAfter = (await owner.query(`select count(*)::int as n from ledger.postings where account_id = $1`, [erin.walletId])).rows[0].n;
    expect(postingsAfter).toBe(postingsBefore);
    const history = await api.graphql('{ allWallets { nodes { balance transactions { nodes { amount counterpartyName } } } } }', {}, frank.accessToken);
    expect(history.data.allWallets.nodes[0]).toEqual({ balance: '2500', transactions: { nodes: [{ amount: '2500', counterpartyName: 'Erased user' }] } });
    expect(await ledgerHealth(owner)).toEqual(HEALTHY);
  });

  it('an admin may erase a person with money left: the balance stays, frozen, and the erasure is logged', async () => {
    const gina = await signedUp('gina');
    const boss = await signedUp('boss');
    await grantAdmin(inject('ownerUrl'), boss.email);
    const bossToken = (await login(boss.email)).data.login.accessToken;
    await fund(owner, gina.walletId, 700);
    const erase = () =>
      api.graphql(`mutation($i: AdminEraseUserInput!) { adminEraseUser(input: $i) { result } }`, { i: { userId: gina.user.rowId, reason: 'GDPR request #7' } }, bossToken);
    expect((await erase()).data.adminEraseUser.result).toBe(true);
    expect(codeOf(await erase())).toBe('USER_ERASED');
    const { rows } = await owner.query(`select balance::int, frozen from ledger.accounts where id = $1`, [gina.walletId]);
    expect(rows[0]).toEqual({ balance: 700, frozen: true });
    const log = await owner.query(`select action, actor_id, details from audit.admin_actions where target_id = $1`, [gina.user.rowId]);
    expect(log.rows).toMatchObject([{ action: 'erase_user', actor_id: boss.user.rowId, details: { reason: 'GDPR request #7', wallets: [{ balance: 700 }] } }]);
    expect(JSON.stringify(log.rows)).not.toContain(gina.email);
    expect(await ledgerHealth(owner)).toEqual(HEALTHY);
  });

  it('rewrites only the client fields of stored Revio bodies, never the same text elsewhere (a name like "paid")', async () => {
    // A person whose chosen name is also a status and a product name in the body.
    const person = await api.graphql(
      `mutation($i: RegisterInput!) { register(input: $i) { user { rowId email } } }`,
      { i: { email: `paid-${Date.now()}@example.com`, password: PASSWORD, fullName: 'paid' } },
    );
    const { rowId: userId, email } = person.data.register.user;
    const walletId = await walletOf(owner, userId);
    const { rows } = await owner.query(
      `insert into app_public.deposits (user_id, wallet_id, amount, currency, idempotency_key, status) values ($1, $2, 1000, 'ZAR', 'erase-json', 'failed') returning id`,
      [userId, walletId],
    );
    const body = {
      id: 'pur_1', type: 'purchase', status: 'paid', event_type: 'purchase.paid', reference: rows[0].id,
      client: { email, full_name: 'paid', phone: '+27 82 000 0000', country: 'ZA' },
      purchase: { currency: 'ZAR', total: 1000, products: [{ name: 'paid', price: 1000 }] },
      status_history: [{ status: 'paid', timestamp: 1 }],
    };
    await owner.query(
      `insert into app_private.revio_deliveries (received_at, source, signature_ok, body, outcome, deposit_id) values (now(), 'webhook', true, $1, 'applied', $2)`,
      [JSON.stringify(body), rows[0].id],
    );
    const bossId = (await signedUp('erasure-boss')).user.rowId;
    const boss = await owner.query(`select email::text from app_public.users where id = $1`, [bossId]);
    await grantAdmin(inject('ownerUrl'), boss.rows[0].email);
    const bossToken = (await login(boss.rows[0].email)).data.login.accessToken;
    const erased = await api.graphql(`mutation($i: AdminEraseUserInput!) { adminEraseUser(input: $i) { result } }`, { i: { userId, reason: 'GDPR' } }, bossToken);
    expect(erased.data.adminEraseUser.result).toBe(true);

    const stored = JSON.parse((await owner.query(`select body from app_private.revio_deliveries where deposit_id = $1`, [rows[0].id])).rows[0].body);
    // The person's data, by path:
    expect(stored.client).toEqual({ email: '[erased]', full_name: '[erased]', phone: '[erased]', country: 'ZA' });
    // Everything else is as Revio sent it, including every other "paid".
    expect({ ...stored, client: body.client }).toEqual(body);
    expect(stored.status).toBe('paid');
    expect(stored.purchase.products[0].name).toBe('paid');
  });
});

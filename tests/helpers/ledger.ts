// Direct SQL access to the ledger for tests: users, funding, balances and the
// global health checks (which hold at every committed snapshot, so they are
// safe while other test files write to the same database).
import pg from 'pg';
import { inject } from 'vitest';
import { uniqueEmail } from './api.ts';

export type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, 'query'>;

export function ownerPool(max = 10): pg.Pool {
  return new pg.Pool({ connectionString: inject('ownerUrl'), max });
}

export interface LedgerUser {
  userId: string;
  email: string;
  walletId: string; // the ZAR wallet every user gets
}

/**
 * Creates a user straight in SQL (as the owner): no password, so no bcrypt.
 * The insert trigger opens the ZAR wallet, as it does for register(). The
 * email counts as verified (so the user can receive transfers) unless
 * `verified: false`.
 */
export async function createUser(db: Queryable, label = 'ledger', options: { verified?: boolean } = {}): Promise<LedgerUser> {
  const email = uniqueEmail(label);
  const { rows } = await db.query(
    `insert into app_public.users (email, full_name, email_verified_at) values ($1, $2, case when $3 then now() end) returning id`,
    [email, `Test ${label}`, options.verified !== false],
  );
  const userId: string = rows[0].id;
  return { userId, email, walletId: await walletOf(db, userId) };
}

export async function walletOf(db: Queryable, userId: string, currency = 'ZAR'): Promise<string> {
  const { rows } = await db.query(`select ledger.open_wallet($1, $2) as id`, [userId, currency]);
  return rows[0].id;
}

/** Credits a wallet from the Revio clearing account, as a paid deposit would. */
export async function fund(db: Queryable, walletId: string, amount: number | bigint): Promise<string> {
  const { rows } = await db.query(
    `select ledger.move('deposit', ledger.system_account('revio_clearing', a.currency), a.id, $2::bigint, 'test deposit') as entry_id
       from ledger.accounts a where a.id = $1`,
    [walletId, String(amount)],
  );
  return rows[0].entry_id;
}

export interface AccountState {
  balance: bigint;
  held: bigint;
  available: bigint;
  version: bigint;
  frozen: boolean;
}

export async function accountState(db: Queryable, accountId: string): Promise<AccountState> {
  const { rows } = await db.query(`select balance, held, version, frozen from ledger.accounts where id = $1`, [accountId]);
  const row = rows[0];
  return {
    balance: BigInt(row.balance),
    held: BigInt(row.held),
    available: BigInt(row.balance) - BigInt(row.held),
    version: BigInt(row.version),
    frozen: row.frozen,
  };
}

/** The ledger-wide checks the audit views express; each must come back empty/zero. */
export async function ledgerHealth(db: Queryable) {
  const [trial, drift, unbalanced, negative] = await Promise.all([
    db.query(`select currency, net_balance::text from audit.trial_balance where net_balance <> 0`),
    db.query(`select * from audit.balance_drift`),
    db.query(`select * from audit.unbalanced_entries`),
    db.query(`select id from ledger.accounts where kind = 'user_wallet' and balance - held < 0`),
  ]);
  return { nonZeroTrialBalance: trial.rows, drift: drift.rows, unbalanced: unbalanced.rows, negativeWallets: negative.rows };
}

export const HEALTHY = { nonZeroTrialBalance: [], drift: [], unbalanced: [], negativeWallets: [] };

/** The SQLSTATE-registered code of a pg error, or its raw SQLSTATE. */
export async function sqlError(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: string; message: string };
    return { code: e.code ?? 'none', message: e.message };
  }
  throw new Error('expected the statement to fail, but it succeeded');
}

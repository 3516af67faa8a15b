// A database of one's own for a test file: a clone of the migrated test
// database (tests/global-setup.ts), for suites that run a worker (which would
// otherwise take other suites' jobs) or assert on global tables.
import pg from 'pg';
import { inject } from 'vitest';

export interface OwnDatabase {
  name: string;
  rootUrl: string;
  ownerUrl: string;
  authUrl: string;
  /** app_worker, what a worker connects as. */
  workerUrl: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createOwnDatabase(label: string): Promise<OwnDatabase> {
  const name = `pgwallet_t_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}`;
  const rootUrl = withDatabase(inject('rootUrl'), 'postgres');
  const root = new pg.Client({ connectionString: rootUrl });
  await root.connect();
  try {
    await root.query(`drop database if exists ${name} with (force)`);
    await root.query(`create database ${name} template ${inject('templateDatabase')} owner app_owner`);
    await root.query(`grant connect on database ${name} to authenticator, app_worker`);
  } finally {
    await root.end();
  }
  return {
    name,
    rootUrl: withDatabase(inject('rootUrl'), name),
    ownerUrl: withDatabase(inject('ownerUrl'), name),
    authUrl: withDatabase(inject('authUrl'), name),
    workerUrl: withDatabase(inject('workerUrl'), name),
    async drop() {
      const admin = new pg.Client({ connectionString: rootUrl });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

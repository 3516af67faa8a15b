// /health: the process is alive (no I/O, for liveness probes).
// /ready: the database answers and has every committed migration, so a load
// balancer sends no traffic to an instance that would fail.
import { Router } from 'express';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';

const committedDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations', 'committed');

/** Migrations are compared by number: graphile-migrate records `000001.sql` for `000001-foundation.sql`. */
const migrationNumber = (filename: string | null) => (filename ? Number.parseInt(filename, 10) : 0);

export function latestCommittedMigration(): number {
  const files = readdirSync(committedDir).filter((f) => f.endsWith('.sql')).sort();
  return migrationNumber(files.at(-1) ?? null);
}

export function healthRoutes(pool: Pool): Router {
  const router = Router();
  const expected = latestCommittedMigration();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    try {
      const { rows } = await pool.query<{ latest: string | null }>('select app_private.latest_migration() as latest');
      const applied = migrationNumber(rows[0]?.latest ?? null);
      if (applied !== expected) {
        res.status(503).json({ status: 'not_ready', reason: 'migrations_pending', applied, expected });
        return;
      }
      res.json({ status: 'ready', migration: applied });
    } catch {
      res.status(503).json({ status: 'not_ready', reason: 'database_unreachable' });
    }
  });
  return router;
}

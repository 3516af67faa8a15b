// Connection pools. An idle client that dies (e.g. a database restart) emits
// 'error'; without a listener that would crash the process.
import pg from 'pg';
import type { Logger } from 'pino';

export function makePool(connectionString: string, name: string, logger: Logger, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: `pgwallet-${name}` });
  pool.on('error', (error) => logger.warn({ pool: name, err: { message: error.message } }, 'idle database client failed'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ pool: name, err: { message: error.message } }, 'database client failed'));
  });
  return pool;
}

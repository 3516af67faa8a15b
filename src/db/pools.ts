// Connection pools. An idle client that dies (e.g. a database restart) emits
// 'error'; without a listener that would crash the process.
import pg from 'pg';
import type { Logger } from 'pino';

/** Session settings sent when each connection starts (`-c name=value`): names like pgwallet.x, values without spaces. */
export function connectionOptions(settings: Record<string, string> = {}): string | undefined {
  const parts = Object.entries(settings).map(([name, value]) => {
    if (!/^[a-z_][a-z0-9_.]*$/i.test(name) || !/^[A-Za-z0-9_.:-]*$/.test(value)) throw new Error(`Unsafe connection setting ${name}=${value}`);
    return `-c ${name}=${value}`;
  });
  return parts.length > 0 ? parts.join(' ') : undefined;
}

export function makePool(connectionString: string, name: string, logger: Logger, max = 10, pgSettings?: Record<string, string>): pg.Pool {
  const options = connectionOptions(pgSettings);
  const pool = new pg.Pool({ connectionString, max, application_name: `pgwallet-${name}`, ...(options ? { options } : {}) });
  pool.on('error', (error) => logger.warn({ pool: name, err: { message: error.message } }, 'idle database client failed'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ pool: name, err: { message: error.message } }, 'database client failed'));
  });
  return pool;
}

// The small helpers every benchmark script uses: settings from the
// environment, rounding and percentiles for the printed figures, and a
// client connection that tolerates the server going away at the end.
import pg from 'pg';

/** A numeric BENCH_* setting, or its default. */
export const envNumber = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The p-th percentile (0–100) of an ascending array. */
export const percentile = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

export async function connect(url: string, applicationName = 'pgwallet-bench'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined); // the server stopping at the end; queries report their own errors
  await client.connect();
  return client;
}

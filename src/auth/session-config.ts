// How long a session may live, however often it is refreshed (issue 9 §4).
// refreshSession fails with SESSION_EXPIRED past it (sql/auth/refresh.sql
// reads it as pgwallet.session_max_age_seconds, which the API sets per request).
import { ConfigError } from '../config.ts';

export const DEFAULT_SESSION_MAX_AGE_DAYS = 30;

/** SESSION_MAX_AGE_DAYS (default 30; fractions allowed, e.g. 0.5 = 12 hours), in seconds. */
export function sessionMaxAgeSecondsFrom(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SESSION_MAX_AGE_DAYS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_SESSION_MAX_AGE_DAYS * 86_400;
  const days = Number(raw);
  if (!Number.isFinite(days) || days <= 0 || days > 3650) throw new ConfigError(`SESSION_MAX_AGE_DAYS must be a number of days above 0 (at most 3650), got "${raw}".`);
  return Math.round(days * 86_400);
}

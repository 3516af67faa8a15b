// Abuse limits from the environment (README.md lists each): rate limits kept in
// PostgreSQL, GraphQL depth/complexity/page-size caps, introspection and Ruru
// switches, the CORS allow-list, the proxy trust setting and the body limit of
// routes other than /graphql and the webhook.
import { ConfigError } from '../config.ts';

export interface RateLimits {
  /** Length of a counting window. */
  windowSeconds: number;
  /** Every GraphQL request, per client address. 0 turns a limit off. */
  perIp: number;
  /** Every GraphQL request, per signed-in user. */
  perUser: number;
  /** Sign-in fields (login, register, refreshSession, password change/reset, email verification): per client address (IPv6: per /64), each field counts. */
  authPerIp: number;
  /** transfer, createDeposit, requestWithdrawal, addBankAccount, deleteMyAccount, admin adjustments: per user, each field counts. */
  moneyPerUser: number;
}

export interface ApiLimits {
  rate: RateLimits;
  /** Money mutations one GraphQL request may carry (more: 400 TOO_MANY_MONEY_FIELDS); sign-in fields are capped at one. */
  maxMoneyFields: number;
  maxDepth: number;
  maxComplexity: number;
  maxPageSize: number;
  introspection: boolean;
  ruru: boolean;
  /** Origins allowed to call the API from a browser; empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Express "trust proxy" (hops or addresses) so req.ip is the client behind a proxy; undefined: the socket address. */
  trustProxy: string | number | boolean | undefined;
  /** Largest body on routes other than /graphql and /webhooks/revio. */
  otherBodyLimitBytes: number;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(`${name} must be a non-negative whole number, got "${raw}".`);
  return value;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}".`);
}

function trustProxyFrom(raw: string | undefined): ApiLimits['trustProxy'] {
  if (raw === undefined || raw.trim() === '') return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text; // addresses / subnets / loopback, uniquelocal … (Express syntax)
}

export function apiLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiLimits {
  const production = (env.NODE_ENV ?? 'development') === 'production';
  const development = (env.NODE_ENV ?? 'development') === 'development';
  const ruru = bool(env, 'GRAPHQL_RURU', development);
  return {
    rate: {
      windowSeconds: Math.max(1, int(env, 'RATE_LIMIT_WINDOW_SECONDS', 60)),
      perIp: int(env, 'RATE_LIMIT_PER_IP', 300),
      perUser: int(env, 'RATE_LIMIT_PER_USER', 120),
      authPerIp: int(env, 'RATE_LIMIT_AUTH_PER_IP', 10),
      moneyPerUser: int(env, 'RATE_LIMIT_MONEY_PER_USER', 20),
    },
    maxMoneyFields: Math.max(1, int(env, 'GRAPHQL_MAX_MONEY_FIELDS', 5)),
    maxDepth: int(env, 'GRAPHQL_MAX_DEPTH', 10),
    maxComplexity: int(env, 'GRAPHQL_MAX_COMPLEXITY', 5000),
    maxPageSize: int(env, 'GRAPHQL_MAX_PAGE_SIZE', 100),
    // Ruru needs introspection, so turning Ruru on turns it on too.
    introspection: bool(env, 'GRAPHQL_INTROSPECTION', !production) || ruru,
    ruru,
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
    trustProxy: trustProxyFrom(env.TRUST_PROXY),
    otherBodyLimitBytes: int(env, 'HTTP_BODY_LIMIT_BYTES', 16_384),
  };
}

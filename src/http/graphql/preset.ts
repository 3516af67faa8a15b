// The PostGraphile preset: Amber over app_public, as seen by the NOINHERIT
// authenticator (so the schema follows what app_* roles are granted), with a
// verified JWT turned into pgSettings for each request.
import type {} from 'postgraphile';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { makePgService } from 'postgraphile/adaptors/pg';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { sessionMaxAgeSecondsFrom } from '../../auth/session-config.ts';
import type { AccessClaims, TokenSettings } from '../../auth/tokens.ts';
import { makeGraphqlMetricsPlugin } from '../../metrics/graphql.ts';
import type { Metrics } from '../../metrics/registry.ts';
import type { ApiLimits } from '../limits-config.ts';
import { adminPgSettings, adminPlugin } from './admin-plugin.ts';
import { makeAuthPlugin } from './auth-plugin.ts';
import { makeGraphqlLimitsPlugin } from './limits-plugin.ts';
import { ledgerPlugins } from './ledger-plugin.ts';
import { makeMaskError } from './mask-error.ts';
import { makePaymentsPlugins, type PaymentsPluginOptions } from './payments-plugin.ts';
import { LeaderboardSubscriptionPlugin } from '../../voting/leaderboard-subscription.ts';

export interface PresetOptions {
  authPool: Pool;
  tokens: TokenSettings;
  logger: Logger;
  development: boolean;
  bodyLimitBytes: number;
  /** Superuser URL: enables live schema reload in development only. */
  watchConnectionString?: string;
  /** Deposits and withdrawals: the bank-account key and the pgwallet.* limits SQL reads. */
  payments?: PaymentsPluginOptions & { pgSettings?: Record<string, string> };
  /** Depth, complexity and page-size caps; introspection and Ruru switches (src/http/limits-config.ts). */
  limits?: Pick<ApiLimits, 'maxDepth' | 'maxComplexity' | 'maxPageSize' | 'introspection' | 'ruru'> & Partial<Pick<ApiLimits, 'maxMoneyFields'>>;
  /** Absolute session lifetime for refreshSession (default: SESSION_MAX_AGE_DAYS, src/auth/session-config.ts). */
  sessionMaxAgeSeconds?: number;
  /** Counts and times GraphQL operations (src/metrics/graphql.ts). */
  metrics?: Metrics;
}

/** The settings PostgreSQL sees for one request; RLS reads the claims. */
export function pgSettingsFor(auth: AccessClaims | null | undefined): Record<string, string> {
  if (!auth) return { role: 'app_anonymous' };
  return {
    role: auth.role,
    'request.jwt.claims': JSON.stringify(auth),
    'request.jwt.claims.sub': auth.sub,
    'request.jwt.claims.sid': auth.sid,
    'request.jwt.claims.role': auth.role,
  };
}

// Control characters (a NUL above all) cannot be a setting's value; the length is bounded.
const UNPRINTABLE = /[\u0000-\u001f\u007f]/g;

/** The client address and user agent, for sign-in attempts and money requests (sql/accounts/client_activity.sql). */
export function clientSettings(req: { ip?: string; headers?: Record<string, unknown> } | undefined): Record<string, string> {
  const settings: Record<string, string> = {};
  if (req?.ip) settings['request.client_ip'] = req.ip;
  const agent = req?.headers?.['user-agent'];
  if (typeof agent === 'string' && agent !== '') settings['request.user_agent'] = agent.replace(UNPRINTABLE, ' ').slice(0, 512);
  return settings;
}

function requestIdSettings(id: unknown): Record<string, string> {
  if (id === undefined || id === null) return {};
  return { application_name: `pgwallet-api req=${String(id)}`.slice(0, 63), 'pgwallet.request_id': String(id) };
}

export function makePreset(options: PresetOptions): GraphileConfig.Preset {
  const watch = options.development && Boolean(options.watchConnectionString);
  const sessionSettings = { 'pgwallet.session_max_age_seconds': String(options.sessionMaxAgeSeconds ?? sessionMaxAgeSecondsFrom()) };
  const adminSettings = adminPgSettings();
  return {
    extends: [PostGraphileAmberPreset, ...(options.limits ? [{ plugins: [makeGraphqlLimitsPlugin(options.limits)] }] : [])],
    plugins: [makeAuthPlugin(options.tokens), adminPlugin, ...ledgerPlugins, ...makePaymentsPlugins(options.payments ?? {}), LeaderboardSubscriptionPlugin, ...(options.metrics ? [makeGraphqlMetricsPlugin(options.metrics)] : [])],
    pgServices: [
      makePgService({
        pool: options.authPool,
        schemas: ['app_public'],
        ...(watch ? { superuserConnectionString: options.watchConnectionString } : {}),
      }),
    ],
    grafserv: {
      graphqlPath: '/graphql',
      graphiql: options.limits?.ruru ?? options.development,
      graphiqlOnGraphQLGET: options.limits?.ruru ?? options.development,
      graphiqlPath: '/graphiql',
      watch,
      maxRequestLength: options.bodyLimitBytes,
      // Subscriptions (leaderboardChanged) over graphql-ws on the same path;
      // the pg service's pgSubscriber LISTENs for them.
      websockets: true,
      maskError: makeMaskError(options.logger),
    },
    grafast: {
      context(requestContext) {
        const req = requestContext.expressv4?.req;
        // The request id reaches PostgreSQL as the transaction's application_name
        // (pg_stat_activity, and log lines with %a in log_line_prefix) and as
        // pgwallet.request_id, so a slow query or SQL error can be traced to its request.
        // The client's address and user agent: for the admin log (sql/admin/audit_log.sql)
        // and for fraud review of sign-ins and money requests (sql/accounts/client_activity.sql).
        const settings = { ...pgSettingsFor(req?.auth), ...requestIdSettings(req?.id), ...clientSettings(req), ...sessionSettings };
        // Payment limits matter only to signed-in callers.
        return { pgSettings: req?.auth ? { ...settings, ...options.payments?.pgSettings, ...adminSettings } : settings };
      },
    },
  };
}

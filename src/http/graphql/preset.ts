// The PostGraphile preset: Amber over app_public, as seen by the NOINHERIT
// authenticator (so the schema follows what app_* roles are granted), with a
// verified JWT turned into pgSettings for each request.
import type {} from 'postgraphile';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { makePgService } from 'postgraphile/adaptors/pg';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
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
  limits?: Pick<ApiLimits, 'maxDepth' | 'maxComplexity' | 'maxPageSize' | 'introspection' | 'ruru'>;
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

function requestIdSettings(id: unknown): Record<string, string> {
  if (id === undefined || id === null) return {};
  return { application_name: `pgwallet-api req=${String(id)}`.slice(0, 63), 'pgwallet.request_id': String(id) };
}

export function makePreset(options: PresetOptions): GraphileConfig.Preset {
  const watch = options.development && Boolean(options.watchConnectionString);
  const adminSettings = adminPgSettings();
  return {
    extends: [PostGraphileAmberPreset, ...(options.limits ? [{ plugins: [makeGraphqlLimitsPlugin(options.limits)] }] : [])],
    plugins: [makeAuthPlugin(options.tokens), adminPlugin, ...ledgerPlugins, ...makePaymentsPlugins(options.payments ?? {}), ...(options.metrics ? [makeGraphqlMetricsPlugin(options.metrics)] : [])],
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
      maskError: makeMaskError(options.logger),
    },
    grafast: {
      context(requestContext) {
        const req = requestContext.expressv4?.req;
        // The request id reaches PostgreSQL as the transaction's application_name
        // (pg_stat_activity, and log lines with %a in log_line_prefix) and as
        // pgwallet.request_id, so a slow query or SQL error can be traced to its request.
        const settings = { ...pgSettingsFor(req?.auth), ...requestIdSettings(req?.id) };
        // The client's address, for the admin log (sql/admin/audit_log.sql).
        if (req?.ip) Object.assign(settings, { 'request.client_ip': req.ip });
        // Payment limits matter only to signed-in callers.
        return { pgSettings: req?.auth ? { ...settings, ...options.payments?.pgSettings, ...adminSettings } : settings };
      },
    },
  };
}

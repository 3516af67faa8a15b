// The PostGraphile preset: Amber over app_public, as seen by the NOINHERIT
// authenticator (so the schema follows what app_* roles are granted), with a
// verified JWT turned into pgSettings for each request.
import type {} from 'postgraphile';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { makePgService } from 'postgraphile/adaptors/pg';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import type { AccessClaims, TokenSettings } from '../../auth/tokens.ts';
import { makeAuthPlugin } from './auth-plugin.ts';
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

export function makePreset(options: PresetOptions): GraphileConfig.Preset {
  const watch = options.development && Boolean(options.watchConnectionString);
  return {
    extends: [PostGraphileAmberPreset],
    plugins: [makeAuthPlugin(options.tokens), ...ledgerPlugins, ...makePaymentsPlugins(options.payments ?? {})],
    pgServices: [
      makePgService({
        pool: options.authPool,
        schemas: ['app_public'],
        ...(watch ? { superuserConnectionString: options.watchConnectionString } : {}),
      }),
    ],
    grafserv: {
      graphqlPath: '/graphql',
      graphiql: options.development,
      graphiqlOnGraphQLGET: options.development,
      graphiqlPath: '/graphiql',
      watch,
      maxRequestLength: options.bodyLimitBytes,
      maskError: makeMaskError(options.logger),
    },
    grafast: {
      context(requestContext) {
        const req = requestContext.expressv4?.req;
        const settings = pgSettingsFor(req?.auth);
        // Payment limits matter only to signed-in callers.
        return { pgSettings: req?.auth ? { ...settings, ...options.payments?.pgSettings } : settings };
      },
    },
  };
}

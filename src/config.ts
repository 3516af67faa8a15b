// Every setting pgwallet reads, in one place. Settings come only from the
// environment (never from files in the repository); README.md documents each.
import { resolve } from 'node:path';

export type Environment = 'development' | 'test' | 'production';

export interface Config {
  env: Environment;
  host: string;
  port: number;
  logLevel: string;
  /** Folder for the embedded PostgreSQL cluster and generated local secrets. */
  dataDir: string;
  embeddedPgPort: number;
  /** Owner (migrations) connection. With neither this nor authDatabaseUrl set, embedded PostgreSQL starts. */
  databaseUrl: string | undefined;
  /** The API's connection, as the NOINHERIT `authenticator` role. */
  authDatabaseUrl: string | undefined;
  /** The job worker's connection, as `app_worker` (never the owner). */
  workerDatabaseUrl: string | undefined;
  /** Superuser connection: only for creating roles/databases and dev schema watch. */
  rootDatabaseUrl: string | undefined;
  jwt: {
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    /** Private signing JWK (JSON). Required in production. */
    privateJwk: string | undefined;
    /** Public JWKS (JSON) accepted on verify; defaults to the signing key's public half. */
    publicJwks: string | undefined;
  };
  graphqlBodyLimitBytes: number;
}

export class ConfigError extends Error {}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(`${name} must be a non-negative integer, got "${raw}".`);
  }
  return value;
}

function environmentFrom(env: NodeJS.ProcessEnv): Environment {
  const raw = env.NODE_ENV ?? 'development';
  if (raw === 'development' || raw === 'test' || raw === 'production') return raw;
  throw new ConfigError(`NODE_ENV must be development, test or production, got "${raw}".`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const environment = environmentFrom(env);
  const config: Config = {
    env: environment,
    host: env.HOST || (environment === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port: intFrom(env, 'PORT', 4000),
    logLevel: env.LOG_LEVEL || (environment === 'test' ? 'silent' : 'info'),
    dataDir: resolve(env.PGWALLET_DATA_DIR || '.data'),
    embeddedPgPort: intFrom(env, 'EMBEDDED_PG_PORT', 54329),
    databaseUrl: env.DATABASE_URL || undefined,
    authDatabaseUrl: env.AUTH_DATABASE_URL || undefined,
    workerDatabaseUrl: env.WORKER_DATABASE_URL || undefined,
    rootDatabaseUrl: env.ROOT_DATABASE_URL || undefined,
    jwt: {
      issuer: env.JWT_ISSUER || 'pgwallet',
      audience: env.JWT_AUDIENCE || 'pgwallet-api',
      accessTokenTtlSeconds: intFrom(env, 'ACCESS_TOKEN_TTL_SECONDS', 15 * 60),
      privateJwk: env.JWT_PRIVATE_JWK || undefined,
      publicJwks: env.JWT_PUBLIC_JWKS || undefined,
    },
    graphqlBodyLimitBytes: intFrom(env, 'GRAPHQL_BODY_LIMIT_BYTES', 100_000),
  };
  if (config.databaseUrl && !config.authDatabaseUrl) {
    throw new ConfigError('AUTH_DATABASE_URL (the authenticator role) is required when DATABASE_URL is set.');
  }
  if (config.env === 'production' && !config.authDatabaseUrl) {
    throw new ConfigError('AUTH_DATABASE_URL is required in production; the embedded PostgreSQL is for development only.');
  }
  if (config.env === 'production' && !config.jwt.privateJwk) {
    throw new ConfigError('JWT_PRIVATE_JWK is required in production; generate one with `npm run keys:generate`.');
  }
  return config;
}

// Runs the graphile-migrate CLI. Its programmatic API is officially unsupported,
// so we call the CLI, always with this same Node binary and with connection
// strings only in the environment (.gmrc holds none).
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = createRequire(import.meta.url).resolve('graphile-migrate/dist/cli.js');

export interface MigrateUrls {
  databaseUrl: string;
  shadowDatabaseUrl?: string;
  rootDatabaseUrl?: string;
}

export class MigrationError extends Error {}

function envWith(urls: MigrateUrls): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: urls.databaseUrl };
  for (const [name, value] of [
    ['SHADOW_DATABASE_URL', urls.shadowDatabaseUrl],
    ['ROOT_DATABASE_URL', urls.rootDatabaseUrl],
  ] as const) {
    if (value) env[name] = value;
    else delete env[name];
  }
  return env;
}

/** Runs a command to completion and returns its output (for programs and tests). */
export function graphileMigrate(args: string[], urls: MigrateUrls): Promise<string> {
  const env = envWith(urls);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { cwd: projectRoot, env }, (error, stdout, stderr) => {
      if (error) reject(new MigrationError(`graphile-migrate ${args[0]} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout + stderr);
    });
  });
}

/** Runs a command attached to this terminal (for `npm run db:*`, including `watch`). */
export function graphileMigrateInteractive(args: string[], urls: MigrateUrls): Promise<number> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: projectRoot, env: envWith(urls), stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 1);
    });
  });
}

export const migrate = (databaseUrl: string) => graphileMigrate(['migrate'], { databaseUrl });

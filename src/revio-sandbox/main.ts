// `npm run sandbox`: the Revio sandbox alone (settings: config.ts).
import { makeLogger } from '../logger.ts';
import { sandboxOptionsFromEnv } from './config.ts';
import { startRevioSandbox } from './server.ts';

const logger = makeLogger(process.env.LOG_LEVEL || 'info');
try {
  const options = sandboxOptionsFromEnv();
  const sandbox = await startRevioSandbox({ ...options, logger });
  console.log(`Revio sandbox ready at ${sandbox.url}
  API base URL   ${sandbox.apiUrl}   (Authorization: Bearer <REVIO_SANDBOX_API_KEY>, default "${sandbox.apiKey === 'revio-sandbox-secret-key' ? sandbox.apiKey : '<set>'}")
  brand id       ${sandbox.brandId}
  console        ${sandbox.url}/_sandbox/
  state file     ${options.stateFile ?? '(memory only)'}`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await sandbox.close();
    logger.info('Revio sandbox stopped');
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  console.error(code === 'EADDRINUSE' ? 'The Revio sandbox port is in use; set REVIO_SANDBOX_PORT.' : `Revio sandbox failed to start: ${(error as Error).message}`);
  process.exitCode = 1;
}

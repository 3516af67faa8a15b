// Structured JSON logs. Redaction is a safety net: request bodies are never
// logged, and these paths catch credentials that travel in headers.
import { pino, type DestinationStream, type Logger } from 'pino';
import { currentLogContext } from './log-context.ts';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-signature"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.refreshToken',
  '*.accessToken',
];

export function makeLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // requestId/userId (API) or jobId/task (worker) of the code that logs (src/log-context.ts).
    mixin: () => ({ ...currentLogContext() }),
  };
  return destination ? pino(options, destination) : pino(options);
}

// Email settings from the environment (README.md lists each). SMTP_URL selects
// the nodemailer SMTP transport; without it emails go to the log (development).
import { ConfigError } from '../config.ts';

export interface EmailSettings {
  transport: 'log' | 'smtp';
  /** nodemailer connection URL, e.g. smtps://user:pass@smtp.example.com:465. */
  smtpUrl?: string;
  from: string;
  /** Base URL of the web app; links are <appUrl>/verify-email?token=… and <appUrl>/reset-password?token=…. */
  appUrl: string;
  /** In production the log transport never prints links (they carry tokens). */
  production: boolean;
}

export function emailSettingsFrom(env: NodeJS.ProcessEnv = process.env): EmailSettings {
  const smtpUrl = env.SMTP_URL?.trim() || undefined;
  const transport = (env.EMAIL_TRANSPORT?.trim() || (smtpUrl ? 'smtp' : 'log')) as EmailSettings['transport'];
  if (transport !== 'log' && transport !== 'smtp') throw new ConfigError(`EMAIL_TRANSPORT must be log or smtp, got "${env.EMAIL_TRANSPORT}".`);
  if (transport === 'smtp' && !smtpUrl) throw new ConfigError('EMAIL_TRANSPORT=smtp needs SMTP_URL (e.g. smtps://user:password@smtp.example.com:465).');
  if (smtpUrl && !/^smtps?:\/\//.test(smtpUrl)) throw new ConfigError('SMTP_URL must start with smtp:// or smtps://.');
  const appUrl = (env.APP_URL?.trim() || 'http://localhost:3000').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(appUrl)) throw new ConfigError(`APP_URL must be an http(s) URL, got "${env.APP_URL}".`);
  return {
    transport,
    smtpUrl,
    from: env.EMAIL_FROM?.trim() || 'pgwallet <no-reply@localhost>',
    appUrl,
    production: (env.NODE_ENV ?? 'development') === 'production',
  };
}

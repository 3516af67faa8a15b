// Where emails go: the log (development: the subject and link only; in
// production not even the link, because it carries a token) or an SMTP server
// through nodemailer.
import nodemailer from 'nodemailer';
import type { EmailSettings } from './config.ts';
import type { EmailMessage } from './templates.ts';

export interface EmailLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface EmailTransport {
  readonly kind: 'log' | 'smtp' | 'custom';
  send(message: EmailMessage, log: EmailLog): Promise<void>;
}

export function logTransport(production: boolean): EmailTransport {
  return {
    kind: 'log',
    async send(message, log) {
      if (production) {
        log.warn('email not delivered: EMAIL_TRANSPORT is log (set SMTP_URL)', { subject: message.subject });
        return;
      }
      // Logs hold no personal data (docs/observability.md): neither the
      // address nor the greeting's name, only the subject and the link.
      const link = /https?:\/\/\S+/.exec(message.text)?.[0];
      log.info(`email "${message.subject}"${link ? `: ${link}` : ''}`, { subject: message.subject });
    },
  };
}

export function smtpTransport(settings: Pick<EmailSettings, 'smtpUrl' | 'from'>): EmailTransport {
  const mailer = nodemailer.createTransport(settings.smtpUrl!);
  return {
    kind: 'smtp',
    async send(message) {
      await mailer.sendMail({ from: settings.from, to: message.to, subject: message.subject, text: message.text });
    },
  };
}

export function transportFor(settings: EmailSettings): EmailTransport {
  return settings.transport === 'smtp' ? smtpTransport(settings) : logTransport(settings.production);
}

// The account emails (sql/accounts: the outbox's template and params).
import type { EmailSettings } from './config.ts';

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
}

type Params = { fullName?: string; token?: string };

function greeting(params: Params): string {
  return params.fullName ? `Hello ${params.fullName},` : 'Hello,';
}

/** Renders one outbox row; throws on a template this code does not know (the job then retries and dies visibly). */
export function renderEmail(template: string, to: string, params: Params, settings: Pick<EmailSettings, 'appUrl'>): EmailMessage {
  const link = (path: string) => `${settings.appUrl}${path}?token=${encodeURIComponent(params.token ?? '')}`;
  switch (template) {
    case 'verify_email':
      return {
        to,
        subject: 'Confirm your email address',
        text: `${greeting(params)}\n\nConfirm your email address for pgwallet by opening this link (valid for 3 days):\n\n${link('/verify-email')}\n\nUntil you do, your account can receive deposits but cannot receive transfers or withdraw.\n`,
      };
    case 'password_reset':
      return {
        to,
        subject: 'Reset your password',
        text: `${greeting(params)}\n\nSomeone (hopefully you) asked to reset your pgwallet password. Open this link within 15 minutes to choose a new one:\n\n${link('/reset-password')}\n\nIf it was not you, ignore this email; your password stays as it is.\n`,
      };
    case 'password_changed':
      return {
        to,
        subject: 'Your password was changed',
        text: `${greeting(params)}\n\nThe password of your pgwallet account was just changed, and your other sessions were signed out.\n\nIf this was not you, reset your password at once and contact support.\n`,
      };
    default:
      throw new Error(`Unknown email template "${template}".`);
  }
}

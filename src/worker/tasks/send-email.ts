// send_email: delivers one row of app_private.email_outbox (queued in the
// transaction that wrote it, sql/accounts/email.sql). The row is read and
// marked sent through two SQL functions, so the task needs no table access.
// A failed delivery throws and graphile-worker retries with backoff; a row
// already sent (a retry after success) is skipped, so a message goes out once
// unless the process dies between the SMTP answer and the mark.
import type { Task } from 'graphile-worker';
import type { EmailSettings } from '../../email/config.ts';
import { renderEmail } from '../../email/templates.ts';
import type { EmailTransport } from '../../email/transport.ts';

export function sendEmail(transport: EmailTransport, settings: Pick<EmailSettings, 'appUrl'>): Task {
  return async (payload, helpers) => {
    const outboxId = Number((payload as { outboxId?: unknown } | null)?.outboxId);
    if (!Number.isSafeInteger(outboxId)) throw new Error('send_email needs an outboxId');
    const { rows } = await helpers.query<{ to_address: string; template: string; params: Record<string, string> | null }>(
      'select * from app_private.email_to_send($1)',
      [outboxId],
    );
    const row = rows[0];
    if (!row) return; // already sent
    await transport.send(renderEmail(row.template, row.to_address, row.params ?? {}, settings), helpers.logger);
    await helpers.query('select app_private.mark_email_sent($1)', [outboxId]);
  };
}

// Reconciliation with Revio.
//
// revio.reconcile_pending (cron, every 5 minutes): deposits awaiting payment
// and withdrawals submitted for longer than RECONCILIATION_MIN_AGE_SECONDS
// are read back from Revio and applied through receive_revio_event exactly
// as a webhook would be (app_private.reconcile_revio_object), so a webhook
// that never came is made up for and one that comes later is a duplicate.
//
// revio.reconcile_daily (cron, 03:30): every deposit and withdrawal with a
// Revio object created in the last RECONCILIATION_LOOKBACK_DAYS is read back
// and compared with the ledger's Revio clearing account
// (app_private.record_revio_reconciliation); differences go to
// audit.revio_discrepancies.
import type { JobHelpers, Task } from 'graphile-worker';
import { asEventBody } from '../../payments/revio-events.ts';
import { RevioError, type Payout, type Purchase, type RevioClient } from '../../revio/index.ts';

interface ObjectRow {
  kind: 'deposit' | 'withdrawal';
  id: string;
  revio_id: string;
}

export interface ReconcileSettings {
  reconcileMinAgeSeconds: number;
  reconcileLookbackDays: number;
}

/** Calls Revio for each row, a few at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

function fetchObject(revio: RevioClient, row: ObjectRow): Promise<Purchase | Payout> {
  return row.kind === 'deposit' ? revio.getPurchase(row.revio_id) : revio.getPayout(row.revio_id);
}

export function revioReconcilePending(revio: RevioClient, settings: ReconcileSettings): Task {
  return async (_payload, helpers: JobHelpers) => {
    const { rows } = await helpers.query<ObjectRow>(
      'select * from app_private.revio_objects_to_reconcile(make_interval(secs => $1))',
      [settings.reconcileMinAgeSeconds],
    );
    const outcomes: Record<string, number> = {};
    let failures = 0;
    await eachLimited(rows, 4, async (row) => {
      try {
        const object = await fetchObject(revio, row);
        const { rows: result } = await helpers.query<{ outcome: string }>(
          'select app_private.reconcile_revio_object($1, $2, $3) as outcome',
          [row.kind, row.id, asEventBody(object)],
        );
        outcomes[result[0].outcome] = (outcomes[result[0].outcome] ?? 0) + 1;
      } catch (error) {
        // One object's trouble must not stop the others; the next run asks again.
        failures += 1;
        helpers.logger.warn(`reconcile ${row.kind} ${row.id}: ${(error as Error).message}`);
      }
    });
    if (rows.length > 0) helpers.logger.info(`reconciled ${rows.length} open payment(s): ${JSON.stringify(outcomes)}`);
    if (failures > 0 && failures === rows.length) throw new Error(`Revio answered none of ${failures} reconciliation lookups.`);
  };
}

export function revioReconcileDaily(revio: RevioClient, settings: ReconcileSettings): Task {
  return async (_payload, helpers: JobHelpers) => {
    const { rows } = await helpers.query<ObjectRow>(
      'select * from app_private.revio_objects_for_daily_check(now() - make_interval(days => $1))',
      [settings.reconcileLookbackDays],
    );
    const observations: Record<string, unknown>[] = [];
    await eachLimited(rows, 4, async (row) => {
      try {
        const object = await fetchObject(revio, row);
        observations.push({
          kind: row.kind, id: row.id, found: true, status: object.status,
          amount: object.payment?.amount ?? (object as Purchase).purchase?.total,
          currency: object.payment?.currency ?? (object as Purchase).purchase?.currency,
          // Net settlement: what Revio keeps as its fee and what it settles.
          fee_amount: object.payment?.fee_amount ?? null,
          net_amount: object.payment?.net_amount ?? null,
          // What Revio can still refund: the purchase less every refund and chargeback it made.
          refundable_amount: object.type === 'purchase' ? (object as Purchase).refundable_amount ?? null : null,
        });
      } catch (error) {
        if (error instanceof RevioError && error.status === 404) observations.push({ kind: row.kind, id: row.id, found: false });
        else throw error; // Revio unreachable: the job retries later
      }
    });
    const { rows: result } = await helpers.query<{ count: number }>('select app_private.record_revio_reconciliation($1) as count', [JSON.stringify(observations)]);
    helpers.logger.info(`daily reconciliation: ${rows.length} object(s) checked, ${result[0].count} new discrepancy(ies)`);
  };
}

// Deposit and withdrawal settings from the environment (README.md lists each).
// The limits reach SQL as pgwallet.* settings on every signed-in request
// (src/http/graphql/preset.ts) and on every connection of the API's and the
// worker's pools (makePool's pgSettings), since webhooks and jobs credit
// deposits too; sql/payments/settings.sql has the same defaults.
import { ConfigError } from '../config.ts';

export interface PaymentLimits {
  depositMinCents: number;
  depositMaxCents: number;
  withdrawalMinCents: number;
  withdrawalMaxCents: number;
  /** Per wallet, over any 24 hours. */
  withdrawalDailyLimitCents: number;
}

export interface PaymentSettings {
  limits: PaymentLimits;
  /** graphile-worker max_attempts of revio.create_purchase / revio.create_payout jobs. */
  jobMaxAttempts: number;
  /** Quick tries of a Revio call inside one job attempt, before the job's own backoff. */
  quickRetries: number;
  /** First gap between quick tries (doubles each time). */
  retryBaseMs: number;
  /** How long a create or refund call whose answer was lost may still land at Revio (revio-job.ts, assertNoCallInFlight). */
  inFlightGraceMs: number;
  /** Reconciliation asks Revio about deposits and withdrawals open this long. */
  reconcileMinAgeSeconds: number;
  /** The daily check reads back objects created in this many days. */
  reconcileLookbackDays: number;
  /** Largest accepted webhook body. */
  webhookBodyLimitBytes: number;
  /** A deposit's credit is held this long (or until Revio reports it settled); 0 = available at once. */
  depositClearingSeconds: number;
  /** How long after the credit a person may refund their own deposit. */
  refundUserWindowSeconds: number;
  /** Fee schedule for purchases whose fee Revio does not report: basis points of the amount … */
  revioFeeBps: number;
  /** … plus this many minor units. */
  revioFeeFixedCents: number;
}

export class PaymentConfigError extends ConfigError {}

function positiveInt(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new PaymentConfigError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} whole number, got "${raw}".`);
  }
  return value;
}

export function paymentSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): PaymentSettings {
  const limits: PaymentLimits = {
    depositMinCents: positiveInt('DEPOSIT_MIN_CENTS', env.DEPOSIT_MIN_CENTS, 1_000),
    depositMaxCents: positiveInt('DEPOSIT_MAX_CENTS', env.DEPOSIT_MAX_CENTS, 5_000_000),
    withdrawalMinCents: positiveInt('WITHDRAWAL_MIN_CENTS', env.WITHDRAWAL_MIN_CENTS, 1_000),
    withdrawalMaxCents: positiveInt('WITHDRAWAL_MAX_CENTS', env.WITHDRAWAL_MAX_CENTS, 2_500_000),
    withdrawalDailyLimitCents: positiveInt('WITHDRAWAL_DAILY_LIMIT_CENTS', env.WITHDRAWAL_DAILY_LIMIT_CENTS, 5_000_000),
  };
  if (limits.depositMinCents > limits.depositMaxCents) throw new PaymentConfigError('DEPOSIT_MIN_CENTS is larger than DEPOSIT_MAX_CENTS.');
  if (limits.withdrawalMinCents > limits.withdrawalMaxCents) throw new PaymentConfigError('WITHDRAWAL_MIN_CENTS is larger than WITHDRAWAL_MAX_CENTS.');
  return {
    limits,
    jobMaxAttempts: positiveInt('REVIO_JOB_MAX_ATTEMPTS', env.REVIO_JOB_MAX_ATTEMPTS, 10),
    quickRetries: positiveInt('REVIO_QUICK_RETRIES', env.REVIO_QUICK_RETRIES, 3),
    retryBaseMs: positiveInt('REVIO_RETRY_BASE_MS', env.REVIO_RETRY_BASE_MS, 500, true),
    inFlightGraceMs: positiveInt('REVIO_INFLIGHT_GRACE_MS', env.REVIO_INFLIGHT_GRACE_MS, 60_000, true),
    reconcileMinAgeSeconds: positiveInt('RECONCILIATION_MIN_AGE_SECONDS', env.RECONCILIATION_MIN_AGE_SECONDS, 600, true),
    reconcileLookbackDays: positiveInt('RECONCILIATION_LOOKBACK_DAYS', env.RECONCILIATION_LOOKBACK_DAYS, 3),
    webhookBodyLimitBytes: positiveInt('REVIO_WEBHOOK_BODY_LIMIT_BYTES', env.REVIO_WEBHOOK_BODY_LIMIT_BYTES, 256_000),
    depositClearingSeconds: positiveInt('DEPOSIT_CLEARING_SECONDS', env.DEPOSIT_CLEARING_SECONDS, 259_200, true),
    refundUserWindowSeconds: positiveInt('REFUND_USER_WINDOW_SECONDS', env.REFUND_USER_WINDOW_SECONDS, 604_800, true),
    revioFeeBps: positiveInt('REVIO_FEE_BPS', env.REVIO_FEE_BPS, 0, true),
    revioFeeFixedCents: positiveInt('REVIO_FEE_FIXED_CENTS', env.REVIO_FEE_FIXED_CENTS, 0, true),
  };
}

/** The pgwallet.* settings SQL reads (app_private.payment_setting). */
export function paymentPgSettings(settings: PaymentSettings): Record<string, string> {
  return {
    'pgwallet.deposit_min_cents': String(settings.limits.depositMinCents),
    'pgwallet.deposit_max_cents': String(settings.limits.depositMaxCents),
    'pgwallet.withdrawal_min_cents': String(settings.limits.withdrawalMinCents),
    'pgwallet.withdrawal_max_cents': String(settings.limits.withdrawalMaxCents),
    'pgwallet.withdrawal_daily_limit_cents': String(settings.limits.withdrawalDailyLimitCents),
    'pgwallet.job_max_attempts': String(settings.jobMaxAttempts),
    'pgwallet.deposit_clearing_seconds': String(settings.depositClearingSeconds),
    'pgwallet.refund_user_window_seconds': String(settings.refundUserWindowSeconds),
    'pgwallet.revio_fee_bps': String(settings.revioFeeBps),
    'pgwallet.revio_fee_fixed_cents': String(settings.revioFeeFixedCents),
  };
}

// Settings, the bank-account cipher and the event names given to objects read
// from Revio's API: small pure pieces, tested without a database.
import { describe, expect, it } from 'vitest';
import { BankKeyError, decryptAccountNumber, encryptAccountNumber, generateBankAccountKey, parseBankAccountKey } from '../src/payments/bank-crypto.ts';
import { connectionOptions } from '../src/db/pools.ts';
import { paymentPgSettings, paymentSettingsFromEnv } from '../src/payments/config.ts';
import { bankAccountKeyFor } from '../src/payments/local-keys.ts';
import { asEventBody, eventTypeFor } from '../src/payments/revio-events.ts';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('payment settings', () => {
  it('has defaults, reads the environment, and refuses nonsense with the variable\'s name', () => {
    const defaults = paymentSettingsFromEnv({});
    expect(defaults.limits).toEqual({ depositMinCents: 1_000, depositMaxCents: 5_000_000, withdrawalMinCents: 1_000, withdrawalMaxCents: 2_500_000, withdrawalDailyLimitCents: 5_000_000 });
    expect(defaults).toMatchObject({ jobMaxAttempts: 10, quickRetries: 3, retryBaseMs: 500, reconcileMinAgeSeconds: 600, reconcileLookbackDays: 3, webhookBodyLimitBytes: 256_000 });
    expect(paymentSettingsFromEnv({ DEPOSIT_MAX_CENTS: '100000', REVIO_JOB_MAX_ATTEMPTS: '4' })).toMatchObject({ limits: { depositMaxCents: 100_000 }, jobMaxAttempts: 4 });
    expect(() => paymentSettingsFromEnv({ DEPOSIT_MIN_CENTS: '-5' })).toThrow(/DEPOSIT_MIN_CENTS must be a positive whole number/);
    expect(() => paymentSettingsFromEnv({ WITHDRAWAL_MAX_CENTS: '12.5' })).toThrow(/WITHDRAWAL_MAX_CENTS/);
    expect(() => paymentSettingsFromEnv({ DEPOSIT_MIN_CENTS: '9000', DEPOSIT_MAX_CENTS: '8000' })).toThrow(/larger than DEPOSIT_MAX_CENTS/);
    // The limits reach SQL as the pgwallet.* settings app_private.payment_setting reads.
    expect(paymentPgSettings(defaults)).toEqual({
      'pgwallet.deposit_min_cents': '1000',
      'pgwallet.deposit_max_cents': '5000000',
      'pgwallet.withdrawal_min_cents': '1000',
      'pgwallet.withdrawal_max_cents': '2500000',
      'pgwallet.withdrawal_daily_limit_cents': '5000000',
      'pgwallet.job_max_attempts': '10',
      'pgwallet.deposit_clearing_seconds': '259200',
      'pgwallet.refund_user_window_seconds': '604800',
      'pgwallet.revio_fee_bps': '0',
      'pgwallet.revio_fee_fixed_cents': '0',
    });
    // Clearing: 72 h in production, 0 (off) allowed; the fee schedule is off unless set.
    expect(paymentSettingsFromEnv({ DEPOSIT_CLEARING_SECONDS: '0', REVIO_FEE_BPS: '290', REVIO_FEE_FIXED_CENTS: '100' }))
      .toMatchObject({ depositClearingSeconds: 0, revioFeeBps: 290, revioFeeFixedCents: 100 });
    expect(() => paymentSettingsFromEnv({ DEPOSIT_CLEARING_SECONDS: '-1' })).toThrow(/DEPOSIT_CLEARING_SECONDS must be a non-negative/);
  });

  it('sends the settings on every connection of the webhook route and the worker, and refuses unsafe ones', () => {
    expect(connectionOptions({ 'pgwallet.deposit_clearing_seconds': '0', 'pgwallet.revio_fee_bps': '250' }))
      .toBe('-c pgwallet.deposit_clearing_seconds=0 -c pgwallet.revio_fee_bps=250');
    expect(connectionOptions({})).toBeUndefined();
    expect(() => connectionOptions({ 'pgwallet.x': '1 -c role=postgres' })).toThrow(/Unsafe/);
    expect(() => connectionOptions({ 'x; drop': '1' })).toThrow(/Unsafe/);
  });
});

describe('bank account cipher', () => {
  const key = parseBankAccountKey(generateBankAccountKey());
  const user = '01a200e8-fcf6-785e-a511-08bc3c6993a9';

  it('round-trips, uses a fresh IV each time, and never contains the number', () => {
    const a = encryptAccountNumber(key, user, '62000123456');
    const b = encryptAccountNumber(key, user, '62000123456');
    expect(a.equals(b)).toBe(false);
    expect(a.includes(Buffer.from('62000123456'))).toBe(false);
    expect(decryptAccountNumber(key, user, a)).toBe('62000123456');
  });

  it('refuses another key, another owner, and any changed byte', () => {
    const blob = encryptAccountNumber(key, user, '62000123456');
    expect(() => decryptAccountNumber(parseBankAccountKey(generateBankAccountKey()), user, blob)).toThrow(/another BANK_ACCOUNT_ENCRYPTION_KEY/);
    expect(() => decryptAccountNumber(key, '01a200e8-0000-785e-a511-08bc3c6993a9', blob)).toThrow(BankKeyError);
    for (const at of [5, 20, blob.length - 1]) {
      const tampered = Buffer.from(blob);
      tampered[at] ^= 1;
      expect(() => decryptAccountNumber(key, user, tampered)).toThrow(BankKeyError);
    }
  });

  it('takes 32 bytes as base64 or hex, nothing else; generates one into the data folder outside production', () => {
    expect(parseBankAccountKey('00'.repeat(32)).key).toHaveLength(32);
    expect(() => parseBankAccountKey('too-short')).toThrow(/32 random bytes/);
    expect(() => bankAccountKeyFor({ env: 'production', dataDir: '/nonexistent' }, {})).toThrow(/required in production/);
    const dir = mkdtempSync(join(tmpdir(), 'pgwallet-keys-'));
    try {
      const first = bankAccountKeyFor({ env: 'development', dataDir: dir }, {});
      expect(bankAccountKeyFor({ env: 'development', dataDir: dir }, {}).id.equals(first.id)).toBe(true);
      expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
      const configured = generateBankAccountKey();
      expect(bankAccountKeyFor({ env: 'production', dataDir: dir }, { BANK_ACCOUNT_ENCRYPTION_KEY: configured }).key.toString('base64')).toBe(configured);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('event names for objects read from the API', () => {
  it('are the ones Revio\'s webhooks carry for the same status', () => {
    expect(eventTypeFor({ type: 'purchase', status: 'paid' })).toBe('purchase.paid');
    expect(eventTypeFor({ type: 'purchase', status: 'error' })).toBe('purchase.payment_failure');
    expect(eventTypeFor({ type: 'purchase', status: 'expired' })).toBe('purchase.expired');
    expect(eventTypeFor({ type: 'payout', status: 'initialized' })).toBe('payout.created');
    expect(eventTypeFor({ type: 'payout', status: 'error' })).toBe('payout.failed');
    // A refund call's answer is the refund Payment: its webhook is payment.refunded.
    const payment = { id: 'r1', type: 'payment', amount: 100, currency: 'ZAR', related_to: { type: 'purchase', id: 'p1' } } as const;
    expect(eventTypeFor(payment)).toBe('payment.refunded');
    expect(eventTypeFor({ ...payment, payment_type: 'chargeback' })).toBe('payment.charged_back');
    expect(eventTypeFor({ type: 'purchase', status: 'pending_refund' })).toBe('purchase.pending_refund');
    expect(JSON.parse(asEventBody({ type: 'payout', status: 'success', id: 'p1' } as never))).toEqual({ type: 'payout', status: 'success', id: 'p1', event_type: 'payout.success' });
  });
});

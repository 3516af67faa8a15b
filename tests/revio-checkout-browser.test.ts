// A person's path through the hosted checkout page, in a real headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core): open the
// purchase's checkout_url, enter the success test card, press Pay, and see the
// purchase become paid and a signed purchase.paid webhook arrive.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRevioSignature } from '../src/revio/index.ts';
import type { RevioSandbox } from '../src/revio-sandbox/index.ts';
import { clientFor, startReceiver, startTestSandbox, type Receiver } from './helpers/revio.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// No skipping: without a browser this suite must fail loudly (CI installs Debian's chromium).
if (!existsSync(CHROMIUM)) {
  throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH.`);
}

describe('checkout page in headless Chromium', () => {
  let sandbox: RevioSandbox;
  let receiver: Receiver;
  let browser: BrowserContext;
  const profile = mkdtempSync(join(tmpdir(), 'revio-chromium-'));

  beforeAll(async () => {
    receiver = await startReceiver();
    sandbox = await startTestSandbox({ webhooks: [{ callback: `${receiver.url}/webhooks/revio`, events: ['purchase.paid'] }] });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
    await receiver?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('pays with the success card and the wallet is told by a signed purchase.paid', async () => {
    const revio = clientFor(sandbox);
    const purchase = await revio.createPurchase({ amount: 25_000, reference: 'browser-deposit-1', client: { email: 'person@example.com' } });
    const page = await browser.newPage();
    const response = await page.goto(purchase.checkout_url);
    expect(response?.status()).toBe(200);
    expect(await page.getByTestId('amount').textContent()).toBe('R 250.00');

    await page.getByLabel('Card number').fill('4444 3333 2222 1111');
    await page.getByLabel('Name on card').fill('Thandi Person');
    await page.getByLabel('Expiry (MM/YY)').fill('11/39');
    await page.getByLabel('CVC').fill('123');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();

    await expect.poll(() => page.getByTestId('status').textContent(), { timeout: 5_000 }).toContain('Payment successful');
    if (process.env.REVIO_SCREENSHOT) await page.screenshot({ path: process.env.REVIO_SCREENSHOT });

    const paid = await revio.getPurchase(purchase.id);
    expect(paid.status).toBe('paid');
    expect(paid.payment).toMatchObject({ amount: 25_000, currency: 'ZAR' });
    expect(paid.transaction_data.attempts.at(-1)).toMatchObject({ successful: true, extra: { card_last4: '1111' } });

    const [webhook] = await receiver.waitFor((r) => r.some((d) => d.body.id === purchase.id));
    expect(webhook.body).toMatchObject({ id: purchase.id, event_type: 'purchase.paid', status: 'paid', reference: 'browser-deposit-1' });
    expect(verifyRevioSignature(webhook.raw, webhook.signature, await revio.getPublicKey())).toBe(true);
    await page.close();
  });

  it('the Fail button declines, shows why, and the customer can pay on the same page', async () => {
    const revio = clientFor(sandbox);
    const purchase = await revio.createPurchase({ amount: 1_000, reference: 'browser-deposit-2', client: { email: 'person@example.com' } });
    const page = await browser.newPage();
    await page.goto(purchase.checkout_url);
    await page.getByRole('button', { name: 'Fail', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Authorisation failed');
    expect((await revio.getPurchase(purchase.id)).status).toBe('error');

    await page.getByRole('button', { name: 'Pay', exact: true }).click(); // the form keeps the (prefilled) success card
    await expect.poll(() => page.getByTestId('status').textContent()).toContain('Payment successful');
    expect((await revio.getPurchase(purchase.id)).status).toBe('paid');
    await page.close();
  });
});

// X-Signature: base64 RSA PKCS#1 v1.5 over SHA-256 of the raw body bytes,
// checked with the key from GET /public_key/ or Webhook.public_key.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeySource, signRevioBody, verifyRevioSignature } from '../src/revio/index.ts';
import type { RevioSandbox } from '../src/revio-sandbox/index.ts';
import { clientFor, startReceiver, startTestSandbox, testPrivateKeyPem, type Receiver } from './helpers/revio.ts';

const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherPublicPem = otherKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();

let sandbox: RevioSandbox;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  sandbox = await startTestSandbox({ webhooks: [{ callback: `${receiver.url}/webhooks/revio`, events: ['purchase.paid'] }] });
});
afterAll(async () => {
  await sandbox.close();
  await receiver.close();
});

describe('verifyRevioSignature', () => {
  const body = Buffer.from('{"id":"p1","event_type":"purchase.paid","payment":{"amount":10000}}');
  const publicPem = createPublicKey(createPrivateKey(testPrivateKeyPem())).export({ type: 'spki', format: 'pem' }).toString();

  it('accepts the signature of the exact bytes', () => {
    const signature = signRevioBody(body, testPrivateKeyPem());
    expect(verifyRevioSignature(body, signature, publicPem)).toBe(true);
  });

  it('rejects a tampered body, even by one byte or by whitespace', () => {
    const signature = signRevioBody(body, testPrivateKeyPem());
    expect(verifyRevioSignature(Buffer.from(body.toString().replace('10000', '90000')), signature, publicPem)).toBe(false);
    expect(verifyRevioSignature(Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 1)), signature, publicPem)).toBe(false);
  });

  it('rejects a body signed with another key', () => {
    const forged = signRevioBody(body, otherKey.privateKey);
    expect(verifyRevioSignature(body, forged, publicPem)).toBe(false);
    expect(verifyRevioSignature(body, forged, otherPublicPem)).toBe(true);
  });

  it('rejects missing, empty, repeated and malformed headers without throwing', () => {
    const signature = signRevioBody(body, testPrivateKeyPem());
    for (const header of [undefined, null, '', '   ', 'not base64!', [signature, signature], signature.slice(0, 20), 'A'.repeat(5000)]) {
      expect(verifyRevioSignature(body, header as string, publicPem)).toBe(false);
    }
  });
});

describe('signed deliveries from the sandbox', () => {
  it('verify with GET /public_key/ and with Webhook.public_key, and fail with another key', async () => {
    const revio = clientFor(sandbox);
    const purchase = await revio.createPurchase({ amount: 2_000, reference: 'sig-1', client: { email: 'a@example.com' } });
    sandbox.payPurchase(purchase.id);
    const [delivery] = await receiver.waitFor((r) => r.some((d) => d.body.id === purchase.id));
    expect(delivery.body).toMatchObject({ id: purchase.id, event_type: 'purchase.paid', status: 'paid', type: 'purchase' });

    const companyKey = await revio.getPublicKey();
    const [webhook] = await revio.listWebhooks();
    expect(verifyRevioSignature(delivery.raw, delivery.signature, companyKey)).toBe(true);
    expect(verifyRevioSignature(delivery.raw, delivery.signature, webhook.public_key)).toBe(true);
    expect(verifyRevioSignature(delivery.raw, delivery.signature, otherPublicPem)).toBe(false);
  });

  it('publicKeySource fetches the key once, and again after a failed fetch', async () => {
    const revio = clientFor(sandbox);
    let calls = 0;
    const counting = { getPublicKey: () => (calls++, revio.getPublicKey()) };
    sandbox.faults.set({ endpoints: { getPublicKey: { failNext: 1 } } });
    const source = publicKeySource(counting);
    await expect(source.get()).rejects.toMatchObject({ kind: 'server' });
    const key = await source.get();
    await source.get();
    expect(calls).toBe(2);
    expect(key.export({ type: 'spki', format: 'pem' })).toBe(sandbox.publicKeyPem);
    const configured = publicKeySource({ getPublicKey: () => Promise.reject(new Error('not called')) }, sandbox.publicKeyPem.replace(/\n/g, '\\n').replace(/\\n/g, '\n'));
    expect((await configured.get()).asymmetricKeyType).toBe('rsa');
  });
});

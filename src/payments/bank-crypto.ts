// Bank account numbers are encrypted here, in the API process, with
// AES-256-GCM under BANK_ACCOUNT_ENCRYPTION_KEY; the database stores only the
// ciphertext (and the last 4 digits), and the key never enters it. The worker
// decrypts for the payout. Layout: 0x01 ‖ key id (4) ‖ IV (12) ‖ tag (16) ‖ data.
// The key id (first 4 bytes of SHA-256 of the key) makes a wrong key a clear
// error; the owner's user id is authenticated data, so a ciphertext copied
// to another person's row does not decrypt.
import { ConfigError } from '../config.ts';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class BankKeyError extends ConfigError {}

export interface BankAccountKey {
  key: Buffer;
  id: Buffer;
}

/** A 32-byte key as base64 (44 characters) or hex (64). */
export function parseBankAccountKey(raw: string): BankAccountKey {
  const text = raw.trim();
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) {
    throw new BankKeyError('BANK_ACCOUNT_ENCRYPTION_KEY must be 32 random bytes as base64 or hex (e.g. `openssl rand -base64 32`).');
  }
  return { key, id: createHash('sha256').update(key).digest().subarray(0, 4) };
}

export function generateBankAccountKey(): string {
  return randomBytes(32).toString('base64');
}

const aad = (userId: string) => Buffer.from(`pgwallet:bank-account:${userId}`);

export function encryptAccountNumber(key: BankAccountKey, userId: string, accountNumber: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv).setAAD(aad(userId));
  const data = Buffer.concat([cipher.update(accountNumber, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), key.id, iv, cipher.getAuthTag(), data]);
}

export function decryptAccountNumber(key: BankAccountKey, userId: string, blob: Buffer): string {
  if (blob.length < 1 + 4 + IV_BYTES + TAG_BYTES + 1 || blob[0] !== VERSION) throw new BankKeyError('Not a bank account ciphertext this version can read.');
  if (!blob.subarray(1, 5).equals(key.id)) {
    throw new BankKeyError('The bank account number was encrypted with another BANK_ACCOUNT_ENCRYPTION_KEY.');
  }
  const iv = blob.subarray(5, 5 + IV_BYTES);
  const tag = blob.subarray(5 + IV_BYTES, 5 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key.key, iv).setAAD(aad(userId)).setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(blob.subarray(5 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new BankKeyError('The bank account number does not decrypt (tampered, or stored for another user).');
  }
}

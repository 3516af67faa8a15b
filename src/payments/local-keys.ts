// Where the bank-account encryption key comes from: BANK_ACCOUNT_ENCRYPTION_KEY
// (required in production), otherwise a key generated once and kept in the
// local data folder's secrets.json, like the JWT signing key.
import { ConfigError, type Config } from '../config.ts';
import { loadLocalSecrets, saveLocalSecrets } from '../db/local.ts';
import { generateBankAccountKey, parseBankAccountKey, type BankAccountKey } from './bank-crypto.ts';

export class MissingBankKeyError extends ConfigError {}

/** The placeholder in .env.example (tests/ops-files.test.ts keeps the two equal): public, so never a key in production. */
export const EXAMPLE_BANK_ACCOUNT_KEY = 'cmVwbGFjZS1tZS13aXRoLTMyLXJhbmRvbS1ieXRlcyE=';

export function bankAccountKeyFor(config: Pick<Config, 'env' | 'dataDir'>, env: NodeJS.ProcessEnv = process.env): BankAccountKey {
  const configured = env.BANK_ACCOUNT_ENCRYPTION_KEY;
  if (configured) {
    const key = parseBankAccountKey(configured);
    // Compared as bytes, so the same key written in hex is refused too.
    if (config.env === 'production' && key.key.equals(parseBankAccountKey(EXAMPLE_BANK_ACCOUNT_KEY).key)) {
      throw new MissingBankKeyError('BANK_ACCOUNT_ENCRYPTION_KEY is the example from .env.example, which is public; generate one with `openssl rand -base64 32`.');
    }
    return key;
  }
  if (config.env === 'production') {
    throw new MissingBankKeyError('BANK_ACCOUNT_ENCRYPTION_KEY is required in production; generate one with `openssl rand -base64 32`.');
  }
  const secrets = loadLocalSecrets(config.dataDir);
  if (!secrets.bankAccountEncryptionKey) {
    secrets.bankAccountEncryptionKey = generateBankAccountKey();
    saveLocalSecrets(config.dataDir, secrets);
  }
  return parseBankAccountKey(secrets.bankAccountEncryptionKey);
}

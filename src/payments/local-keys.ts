// Where the bank-account encryption key comes from: BANK_ACCOUNT_ENCRYPTION_KEY
// (required in production), otherwise a key generated once and kept in the
// local data folder's secrets.json, like the JWT signing key.
import { ConfigError, type Config } from '../config.ts';
import { loadLocalSecrets, saveLocalSecrets } from '../db/local.ts';
import { generateBankAccountKey, parseBankAccountKey, type BankAccountKey } from './bank-crypto.ts';

export class MissingBankKeyError extends ConfigError {}

export function bankAccountKeyFor(config: Pick<Config, 'env' | 'dataDir'>, env: NodeJS.ProcessEnv = process.env): BankAccountKey {
  const configured = env.BANK_ACCOUNT_ENCRYPTION_KEY;
  if (configured) return parseBankAccountKey(configured);
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

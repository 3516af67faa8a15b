// Where the signing key comes from: the environment when given (always in
// production), otherwise a key generated once and kept in the data folder.
import type { Config } from '../config.ts';
import { loadLocalSecrets, saveLocalSecrets } from '../db/local.ts';
import { generatePrivateJwk, loadSigningKeys } from './keys.ts';
import type { TokenSettings } from './tokens.ts';

export async function tokenSettingsFor(config: Config): Promise<TokenSettings> {
  let privateJwk = config.jwt.privateJwk;
  if (!privateJwk) {
    const secrets = loadLocalSecrets(config.dataDir);
    if (!secrets.jwtPrivateJwk) {
      secrets.jwtPrivateJwk = await generatePrivateJwk();
      saveLocalSecrets(config.dataDir, secrets);
    }
    privateJwk = secrets.jwtPrivateJwk;
  }
  return {
    keys: await loadSigningKeys(privateJwk, config.jwt.publicJwks),
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: config.jwt.accessTokenTtlSeconds,
  };
}

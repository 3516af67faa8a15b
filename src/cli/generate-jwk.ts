// `npm run keys:generate`: prints a fresh Ed25519 signing key as a JWK, for
// JWT_PRIVATE_JWK in production. Keep it in your secret store, not in git.
import { generatePrivateJwk } from '../auth/keys.ts';

process.stdout.write(`${await generatePrivateJwk()}\n`);

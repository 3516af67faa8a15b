// What the verified-token cache (src/auth/verified-token-cache.ts) saves per
// request: the real verifyAccessToken (jose, EdDSA, pinned algorithms, issuer,
// audience) against a cache hit, on one core. docs/design.md §17 quotes it.
//   node tests/bench/token-cache.ts [iterations]
import { generatePrivateJwk, loadSigningKeys } from '../../src/auth/keys.ts';
import { signAccessToken, verifyAccessToken, type TokenSettings } from '../../src/auth/tokens.ts';
import { VerifiedTokenCache } from '../../src/auth/verified-token-cache.ts';
import { loadavg } from 'node:os';

const iterations = Number(process.argv[2] ?? 20_000);
const keys = await loadSigningKeys(await generatePrivateJwk());
const settings: TokenSettings = { keys, issuer: 'pgwallet', audience: 'pgwallet-api', ttlSeconds: 900 };
const { token } = await signAccessToken(settings, { userId: crypto.randomUUID(), role: 'app_user', sessionId: crypto.randomUUID() });

async function microsPerCall(fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(2_000, iterations); i++) await fn(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1_000 / iterations;
}

const verify = await microsPerCall(() => verifyAccessToken(settings, token));
const cache = new VerifiedTokenCache();
cache.set(token, await verifyAccessToken(settings, token));
const hit = await microsPerCall(() => {
  if (!cache.get(token)) throw new Error('cache miss');
});

console.log(`${keys.alg} access token, ${iterations} calls each (load average ${loadavg()[0].toFixed(2)}):`);
console.log(`  full verification  ${verify.toFixed(1)} µs/request`);
console.log(`  cache hit          ${hit.toFixed(2)} µs/request`);

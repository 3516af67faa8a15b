import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./tests/global-setup.ts'],
    include: ['tests/**/*.test.ts'],
    pool: 'forks',
    // On 2 cores vitest would otherwise run files one after another; the
    // suites mostly wait on PostgreSQL, so 4 in parallel is faster.
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every suite calls the API from 127.0.0.1 and shares one database, so the
    // rate limits are off (0) here; tests/abuse-limits.test.ts sets tight ones.
    env: {
      NODE_ENV: 'test', GRAPHILE_ENV: 'test', LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_IP: '0', RATE_LIMIT_PER_USER: '0', RATE_LIMIT_AUTH_PER_IP: '0', RATE_LIMIT_MONEY_PER_USER: '0',
    },
  },
});

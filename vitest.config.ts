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
    env: { NODE_ENV: 'test', GRAPHILE_ENV: 'test', LOG_LEVEL: 'silent' },
  },
});

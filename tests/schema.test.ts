// The public API as SDL, checked in. Any change to what GraphQL exposes shows
// up in review as a diff of tests/__snapshots__/schema.graphql; run
// `npx vitest run -u tests/schema.test.ts` to accept an intended change.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeSchema } from 'postgraphile';
import { lexicographicSortSchema, printSchema } from 'postgraphile/graphql';
import { startTestApi, type TestApi } from './helpers/api.ts';
import { makePreset } from '../src/http/graphql/preset.ts';
import { makePool } from '../src/db/pools.ts';
import { makeLogger } from '../src/logger.ts';
import { inject } from 'vitest';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

it('matches the checked-in schema snapshot', async () => {
  const logger = makeLogger('silent');
  const authPool = makePool(inject('authUrl'), 'schema', logger);
  try {
    const { schema } = await makeSchema(
      makePreset({ authPool, tokens: api.tokens, logger, development: false, bodyLimitBytes: 100_000 }),
    );
    await expect(printSchema(lexicographicSortSchema(schema))).toMatchFileSnapshot('./__snapshots__/schema.graphql');
  } finally {
    await authPool.end();
  }
});

// The rate limiter's counting without a SQL call per request (RateCounter):
// each API process counts its own hits at once and shares them through
// app_private.rate_limit_add, so several processes enforce one limit. Two
// counters here stand for two API processes on one database.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { makePool } from '../src/db/pools.ts';
import { RateCounter } from '../src/http/abuse.ts';
import { makeLogger } from '../src/logger.ts';

const logger = makeLogger('silent');
const pool = makePool(inject('authUrl'), 'rate-counter-test', logger);
afterAll(() => pool.end());

const WINDOW = 3600; // one window for the whole test
const now = () => Math.floor(Date.now() / (WINDOW * 1000)) * WINDOW * 1000 + 1000;

describe('RateCounter', () => {
  it('one process: refuses the hit over the limit at once, with the seconds left in the window', () => {
    const counter = new RateCounter(pool, WINDOW, logger, 60_000);
    const bucket: [string, number][] = [[`ip:${randomUUID()}`, 3]];
    expect([1, 2, 3].map(() => counter.hit(bucket, now()))).toEqual([0, 0, 0]);
    expect(counter.hit(bucket, now())).toBe(WINDOW - 1);
    counter.close();
  });

  it('two processes: after a flush each sees the other’s hits, and PostgreSQL holds the sum', async () => {
    const a = new RateCounter(pool, WINDOW, logger, 60_000);
    const b = new RateCounter(pool, WINDOW, logger, 60_000);
    const name = `user:${randomUUID()}`;
    const bucket: [string, number][] = [[name, 5]];
    for (let i = 0; i < 3; i++) expect(a.hit(bucket, now())).toBe(0);
    for (let i = 0; i < 2; i++) expect(b.hit(bucket, now())).toBe(0);
    await a.flush();
    await b.flush();
    // b now knows a's 3 hits: 3 + 2 = 5, so the next hit, in either process, is over.
    expect(b.hit(bucket, now())).toBeGreaterThan(0);
    await b.flush();
    await a.flush(); // nothing pending in a; it learns the totals on its next flush with hits
    expect(a.hit(bucket, now())).toBe(0); // a has not heard of b's hits yet (one flush behind)
    await a.flush();
    expect(a.hit(bucket, now())).toBeGreaterThan(0);
    await a.flush();
    const { rows } = await pool.query(`select app_private.rate_limit_add($1::text[], $2::bigint[], $3::int[], $4) as r`, [[name], [now() - 1000], [0], WINDOW]);
    expect(rows).toEqual([]); // zero hits add nothing and return nothing
    a.close();
    b.close();
  });

  it('keeps counting in the process when PostgreSQL is unreachable (fail open for sharing, not for limits)', async () => {
    const broken = makePool('postgres://nobody:wrong@127.0.0.1:1/none', 'broken', logger);
    const counter = new RateCounter(broken, WINDOW, logger, 60_000);
    const bucket: [string, number][] = [[`ip:${randomUUID()}`, 2]];
    counter.hit(bucket, now());
    await counter.flush(); // fails, keeps the hit pending
    counter.hit(bucket, now());
    expect(counter.hit(bucket, now())).toBeGreaterThan(0);
    counter.close();
    await broken.end();
  });
});

// Issue 9 §3: /webhooks/revio cannot be used to fill the disk. Played over
// HTTP: big bad-signature bodies keep only their headers, SHA-256, size and
// first 1 kB; a flood of bad signatures from one address is cut off with 429
// (and not stored) while Revio's good deliveries from the same address still
// go through; the retention job purges old deliveries, bad ones sooner.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRevioBody } from '../src/revio/index.ts';
import { createDeposit, eventually, paidEvent, runJob, signUp, startPaymentsStack, type PaymentsStack } from './helpers/payments.ts';
import { roomInWindow } from './helpers/rate-window.ts';
import { testPrivateKeyPem } from './helpers/revio.ts';

const BAD_PER_WINDOW = 5;
const WINDOW_SECONDS = 3600;
let stack: PaymentsStack;

async function post(raw: string, signature?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature) headers['x-signature'] = signature;
  const response = await fetch(`${stack.url}/webhooks/revio`, { method: 'POST', headers, body: raw });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as any };
}

beforeAll(async () => {
  // Read when the route is built; this file runs in its own worker.
  process.env.REVIO_WEBHOOK_BAD_SIGNATURES_PER_IP = String(BAD_PER_WINDOW);
  process.env.RATE_LIMIT_WINDOW_SECONDS = String(WINDOW_SECONDS);
  stack = await startPaymentsStack('webhook_disk');
  // The bad-signature count runs across the first two tests: keep them in one window.
  await roomInWindow(WINDOW_SECONDS, 60);
}, 120_000);
afterAll(async () => {
  await stack?.close();
  delete process.env.REVIO_WEBHOOK_BAD_SIGNATURES_PER_IP;
  delete process.env.RATE_LIMIT_WINDOW_SECONDS;
});

describe('the webhook route cannot fill the disk', () => {
  it('keeps headers, SHA-256, size and at most the first 1 kB of a bad-signature body', async () => {
    // 200 kB, with multi-byte characters straddling the 1 kB cut.
    const raw = JSON.stringify({ id: 'big-one', filler: 'é'.repeat(100_000) });
    const response = await post(raw, 'bm90IGEgc2lnbmF0dXJl');
    expect(response.status).toBe(401);
    expect(response.body.errors[0].extensions.code).toBe('WEBHOOK_SIGNATURE_INVALID');
    const { rows } = await stack.owner.query(
      `select octet_length(body) as stored, body, body_sha256, body_bytes, headers->>'x-signature' as signature
         from audit.revio_webhook_log where not signature_ok order by id desc limit 1`,
    );
    expect(rows[0].stored).toBeLessThanOrEqual(1024);
    expect(rows[0].stored).toBeGreaterThan(1000);
    expect(raw.startsWith(rows[0].body)).toBe(true);
    expect(rows[0].body_bytes).toBe(Buffer.byteLength(raw));
    expect(rows[0].body_sha256).toBe(createHash('sha256').update(raw).digest('hex'));
    expect(rows[0].signature).toBe('bm90IGEgc2lnbmF0dXJl');
    // The table itself refuses a larger bad-signature body, whoever writes it.
    const direct = await stack.owner
      .query(`insert into app_private.revio_deliveries (received_at, source, signature_ok, body, outcome) values (now(), 'webhook', false, repeat('x', 2000), 'bad_signature')`)
      .catch((e) => e.code);
    expect(direct).toBe('23514');
  });

  it('rate limits bad signatures per address, never good ones', async () => {
    const person = await signUp(stack, 'payer');
    const deposit = await createDeposit(stack, person, 5000);
    const id = deposit.data.createDeposit.result.rowId;
    const { revio_purchase_id: purchaseId } = await eventually(async () => {
      const { rows } = await stack.owner.query(`select revio_purchase_id from app_public.deposits where id = $1 and revio_purchase_id is not null`, [id]);
      return rows[0];
    });

    const { rows: before } = await stack.owner.query(`select count(*)::int as n from app_private.revio_deliveries where not signature_ok`);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await post(JSON.stringify({ junk: i }), 'bm90IGEgc2lnbmF0dXJl')).status);
    // The first test's delivery counted too: BAD_PER_WINDOW bad ones in all are recorded.
    expect(statuses.filter((s) => s === 401)).toHaveLength(BAD_PER_WINDOW - 1);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30 - (BAD_PER_WINDOW - 1));
    const limited = await post('{}');
    expect(limited.status).toBe(429);
    expect(limited.body.errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    const { rows: after } = await stack.owner.query(`select count(*)::int as n from app_private.revio_deliveries where not signature_ok`);
    expect(after[0].n - before[0].n).toBe(BAD_PER_WINDOW - 1);

    // Revio, from the same (throttled) address, is still heard: the deposit is paid.
    const event = await paidEvent(stack, purchaseId);
    const raw = JSON.stringify(event);
    const good = await post(raw, signRevioBody(raw, testPrivateKeyPem()));
    expect(good.status).toBe(200);
    expect(good.body.outcome).toBe('applied');
    const { rows: paid } = await stack.owner.query(`select status from app_public.deposits where id = $1`, [id]);
    expect(paid[0].status).toBe('paid');
    const { rows: stored } = await stack.owner.query(
      `select body_bytes, body_sha256 from app_private.revio_deliveries where signature_ok and source = 'webhook' and outcome = 'applied' order by id desc limit 1`,
    );
    expect(stored[0]).toEqual({ body_bytes: Buffer.byteLength(raw), body_sha256: createHash('sha256').update(raw).digest('hex') });
  });

  it('the retention job purges deliveries past their window: bad ones after 7 days, good ones after 90', async () => {
    const insert = (ok: boolean, daysAgo: number) =>
      stack.owner.query(
        `insert into app_private.revio_deliveries (received_at, source, signature_ok, body, outcome)
         values (now() - make_interval(days => $2), 'webhook', $1, 'old', case when $1 then 'ignored' else 'bad_signature' end) returning id`,
        [ok, daysAgo],
      );
    const ids = {
      bad8: (await insert(false, 8)).rows[0].id,
      bad6: (await insert(false, 6)).rows[0].id,
      good91: (await insert(true, 91)).rows[0].id,
      good89: (await insert(true, 89)).rows[0].id,
    };
    const { rows: payments } = await stack.owner.query(`select count(*)::int as n from app_public.deposits`);
    await runJob(stack, 'revio.purge_deliveries');
    const { rows } = await stack.owner.query(`select id from app_private.revio_deliveries where id = any($1::bigint[])`, [Object.values(ids)]);
    expect(rows.map((r) => r.id).sort()).toEqual([ids.bad6, ids.good89].sort());
    // The payment rows keep what matters.
    const { rows: paymentsAfter } = await stack.owner.query(`select count(*)::int as n from app_public.deposits`);
    expect(paymentsAfter[0].n).toBe(payments[0].n);
  });
});

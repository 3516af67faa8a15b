// Paid voting end to end through GraphQL over real HTTP (issue 12), against a
// database of this file's own with the worker and the Revio sandbox (for the
// organiser's payout): organisations and RLS between them, events and their
// voting window, paid and free votes with idempotency, the per-voter caps
// under a race of parallel requests, fraud flags and their review, judges and
// the published result, leaderboard snapshots, the payout through
// requestWithdrawal, and the leaderboard subscription over a real websocket.
import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCronItems } from '../src/worker/tasks/index.ts';
import { fund, ledgerHealth, HEALTHY } from './helpers/ledger.ts';
import { eventually, signUp, startPaymentsStack, type PaymentsStack, type Person } from './helpers/payments.ts';

let stack: PaymentsStack;
beforeAll(async () => {
  stack = await startPaymentsStack('voting');
});
afterAll(() => stack?.close());

const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;

function ok<T = any>(result: { data?: any; errors?: unknown }, field: string): T {
  expect(result.errors, field).toBeUndefined();
  return result.data[field];
}

const PRICE = 500; // R5.00 a vote
const VOTE_FIELDS = 'rowId status flagReason count amount fee contestantId entryId';

async function funded(label: string, amount = 100_000): Promise<Person> {
  const person = await signUp(stack, label);
  if (amount > 0) await fund(stack.owner, person.walletId, amount);
  return person;
}

async function walletBalance(walletId: string): Promise<number> {
  const { rows } = await stack.owner.query(`select balance from ledger.accounts where id = $1`, [walletId]);
  return Number(rows[0].balance);
}

async function createOrganisation(person: Person, name = 'Stars Inc') {
  const result = await stack.graphql(`mutation($n: String!) { createOrganisation(input: { name: $n }) { result { rowId name } } }`, { n: name }, person.token);
  return ok(result, 'createOrganisation').result.rowId as string;
}

interface EventSetup {
  eventId: string;
  categoryId: string;
  contestants: string[];
}

/** A draft event with one category and `contestants` contestants; opened unless `open` is false. */
async function createEvent(person: Person, organisationId: string, settings: Record<string, unknown> = {}, options: { contestants?: number; open?: boolean } = {}): Promise<EventSetup> {
  const event = ok(await stack.graphql(
    `mutation($e: EventInput!) { createEvent(input: { event: $e }) { event { rowId status } } }`,
    { e: {
      organisationId, name: `Final ${randomUUID().slice(0, 6)}`, opensAt: new Date(Date.now() - 60_000).toISOString(),
      closesAt: new Date(Date.now() + 3_600_000).toISOString(), votePrice: String(PRICE),
      voterRequestsPerMinute: 10_000, addressRequestsPerMinute: 10_000, ...settings,
    } },
    person.token,
  ), 'createEvent').event;
  expect(event.status).toBe('draft');
  const category = ok(await stack.graphql(
    `mutation($c: CategoryInput!) { createCategory(input: { category: $c }) { category { rowId organisationId } } }`,
    { c: { eventId: event.rowId, name: 'Best voice' } },
    person.token,
  ), 'createCategory').category;
  expect(category.organisationId).toBe(organisationId);
  const contestants: string[] = [];
  for (let i = 0; i < (options.contestants ?? 2); i++) {
    const contestant = ok(await stack.graphql(
      `mutation($c: ContestantInput!) { createContestant(input: { contestant: $c }) { contestant { rowId } } }`,
      { c: { categoryId: category.rowId, name: `Singer ${String.fromCharCode(65 + i)}` } },
      person.token,
    ), 'createContestant').contestant;
    contestants.push(contestant.rowId);
  }
  if (options.open !== false) await setStatus(person, event.rowId, 'open');
  return { eventId: event.rowId, categoryId: category.rowId, contestants };
}

async function setStatus(person: Person, eventId: string, status: string) {
  const result = await stack.graphql(
    `mutation($id: UUID!, $s: EventStatus!) { setEventStatus(input: { eventId: $id, status: $s }) { result { status } } }`,
    { id: eventId, s: status },
    person.token,
  );
  return result;
}

function castVotes(person: Person, contestantId: string, count: number, key = randomUUID()) {
  return stack.graphql(
    `mutation($i: CastVotesInput!) { castVotes(input: $i) { result { ${VOTE_FIELDS} } } }`,
    { i: { contestantId, count, idempotencyKey: key } },
    person.token,
  );
}

async function leaderboard(categoryId: string, token?: string) {
  const result = await stack.graphql(
    `query($id: UUID!) { categoryLeaderboardList(categoryId: $id) { contestantId contestantName votes rank } }`,
    { id: categoryId },
    token,
  );
  return result;
}

const standings = async (categoryId: string, token?: string) =>
  Object.fromEntries(ok<any[]>(await leaderboard(categoryId, token), 'categoryLeaderboardList').map((r) => [r.contestantId, Number(r.votes)]));

async function eventBalance(person: Person, eventId: string): Promise<number> {
  const result = await stack.graphql(`query($id: UUID!) { eventByRowId(rowId: $id) { balance } }`, { id: eventId }, person.token);
  return Number(ok(result, 'eventByRowId').balance);
}

describe('an event with paid votes', () => {
  it('two voters pay from their wallets; the leaderboard counts; the event account gets the money less the fee', async () => {
    const organiser = await funded('organiser', 0);
    const organisationId = await createOrganisation(organiser);
    const { eventId, categoryId, contestants: [a, b] } = await createEvent(organiser, organisationId);
    const thandi = await funded('thandi', 10_000);
    const sipho = await funded('sipho', 10_000);

    const first = ok(await castVotes(thandi, a, 3), 'castVotes').result;
    expect(first).toMatchObject({ status: 'counted', flagReason: null, count: 3, amount: '1500', fee: '75', contestantId: a });
    ok(await castVotes(sipho, b, 2), 'castVotes');
    ok(await castVotes(sipho, a, 1), 'castVotes');

    expect(await walletBalance(thandi.walletId)).toBe(10_000 - 1_500);
    expect(await walletBalance(sipho.walletId)).toBe(10_000 - 1_500);
    // 3000 paid, 5% platform fee per payment (75 + 50 + 25).
    expect(await eventBalance(organiser, eventId)).toBe(3_000 - 150);
    // Anyone may watch while the event is open: A 4 votes (rank 1), B 2.
    const board = ok<any[]>(await leaderboard(categoryId), 'categoryLeaderboardList');
    expect(board.map((r) => [r.contestantId, r.votes, r.rank])).toEqual([[a, '4', 1], [b, '2', 2]]);
    // The voter sees the vote in their wallet history as a payment.
    const history = await stack.graphql(
      `query($id: UUID!) { walletByRowId(rowId: $id) { transactions(first: 1) { nodes { kind amount } } } }`,
      { id: thandi.walletId }, thandi.token);
    expect(ok(history, 'walletByRowId').transactions.nodes[0]).toEqual({ kind: 'vote', amount: '-1500' });
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
    const { rows } = await stack.owner.query(`select * from audit.leaderboard_drift`);
    expect(rows).toEqual([]);
  });

  it('is idempotent: the same key returns the first vote and pays once; a different request with it is refused', async () => {
    const organiser = await funded('organiser', 0);
    const { contestants: [a, b] } = await createEvent(organiser, await createOrganisation(organiser));
    const voter = await funded('voter', 10_000);
    const key = randomUUID();
    const results = await Promise.all(Array.from({ length: 8 }, () => castVotes(voter, a, 2, key)));
    const ids = new Set(results.map((r) => ok(r, 'castVotes').result.rowId));
    expect(ids.size).toBe(1);
    expect(await walletBalance(voter.walletId)).toBe(10_000 - 2 * PRICE);
    expect(codeOf(await castVotes(voter, b, 2, key))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(codeOf(await castVotes(voter, a, 3, key))).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('refuses what it must, with stable codes, and changes nothing', async () => {
    const organiser = await funded('organiser', 0);
    const { eventId, contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser), { maxVotesPerRequest: 5 });
    const poor = await funded('poor', 400);
    expect(codeOf(await castVotes(poor, a, 1))).toBe('INSUFFICIENT_FUNDS');
    expect(codeOf(await castVotes(poor, a, 0))).toBe('VOTE_COUNT_INVALID');
    expect(codeOf(await castVotes(poor, a, 6))).toBe('VOTE_COUNT_INVALID');
    expect(codeOf(await castVotes(poor, randomUUID(), 1))).toBe('CONTESTANT_NOT_FOUND');
    expect(codeOf(await stack.graphql(
      `mutation($i: CastVotesInput!) { castVotes(input: $i) { result { rowId } } }`, { i: { contestantId: a, count: 1, idempotencyKey: 'k' } }))).toBe('PERMISSION_DENIED');
    expect(await walletBalance(poor.walletId)).toBe(400);
    expect(await eventBalance(organiser, eventId)).toBe(0);
    // Rules of a running event are fixed.
    const edit = await stack.graphql(`mutation($id: UUID!) { updateEventByRowId(input: { rowId: $id, eventPatch: { votePrice: "1" } }) { event { votePrice } } }`, { id: eventId }, organiser.token);
    expect(codeOf(edit)).toBe('EVENT_NOT_EDITABLE');
    expect(codeOf(await setStatus(organiser, eventId, 'published'))).toBe('EVENT_STATUS_INVALID');
    // Settings out of range are refused by constraint.
    const bad = await stack.graphql(`mutation($e: EventInput!) { createEvent(input: { event: $e }) { event { rowId } } }`, {
      e: { organisationId: (await stack.owner.query(`select organisation_id from app_public.events where id = $1`, [eventId])).rows[0].organisation_id,
        name: 'Backwards', opensAt: new Date().toISOString(), closesAt: new Date(Date.now() - 1000).toISOString(), votePrice: '100' },
    }, organiser.token);
    expect(codeOf(bad)).toBe('EVENT_SETTINGS_INVALID');
  });
});

describe('caps', () => {
  it('hold under a race of parallel requests from one voter: never more than the daily cap', async () => {
    const organiser = await funded('organiser', 0);
    const { eventId, categoryId, contestants: [a, b] } = await createEvent(organiser, await createOrganisation(organiser), { maxVotesPerVoterPerDay: 10 });
    const voter = await funded('racer', 100_000);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => castVotes(voter, i % 2 ? a : b, 1)));
    const accepted = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    expect(accepted.length).toBe(10);
    expect(new Set(refused.map(codeOf))).toEqual(new Set(['VOTE_CAP_REACHED']));
    expect(await walletBalance(voter.walletId)).toBe(100_000 - 10 * PRICE);
    const board = await standings(categoryId);
    expect(board[a] + board[b]).toBe(10);
    const { rows } = await stack.owner.query(`select sum(count)::int as votes from app_public.votes where event_id = $1 and voter_id = $2`, [eventId, voter.userId]);
    expect(rows[0].votes).toBe(10);
  });

  it('caps per category too, and a refused request costs nothing', async () => {
    const organiser = await funded('organiser', 0);
    const { contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser), { maxVotesPerVoterPerDay: 10, maxVotesPerCategoryPerDay: 4 });
    const voter = await funded('voter', 100_000);
    ok(await castVotes(voter, a, 3), 'castVotes');
    const refused = await castVotes(voter, a, 2);
    expect(codeOf(refused)).toBe('CATEGORY_VOTE_CAP_REACHED');
    expect(refused.errors![0].message).toMatch(/3 of 4 used/);
    ok(await castVotes(voter, a, 1), 'castVotes');
    expect(await walletBalance(voter.walletId)).toBe(100_000 - 4 * PRICE);
  });
});

describe('the voting window', () => {
  it('accepts votes until closesAt, refuses them after; the cron task then marks the event closed', async () => {
    const organiser = await funded('organiser', 0);
    const { eventId, contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser), { closesAt: new Date(Date.now() + 2_500).toISOString() });
    const voter = await funded('late', 10_000);
    ok(await castVotes(voter, a, 1), 'castVotes');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const late = await castVotes(voter, a, 1);
    expect(codeOf(late)).toBe('EVENT_NOT_OPEN');
    expect(await walletBalance(voter.walletId)).toBe(10_000 - PRICE);
    expect(makeCronItems().map((item) => item.task)).toEqual(expect.arrayContaining(['voting_close_events', 'voting_snapshot_leaderboards']));
    await stack.owner.query(`select app_private.close_due_events()`);
    const { rows } = await stack.owner.query(`select status from app_public.events where id = $1`, [eventId]);
    expect(rows[0].status).toBe('closed');
  });

  it('refuses votes before opensAt and while the event is a draft', async () => {
    const organiser = await funded('organiser', 0);
    const organisationId = await createOrganisation(organiser);
    const early = await createEvent(organiser, organisationId, { opensAt: new Date(Date.now() + 3_600_000).toISOString(), closesAt: new Date(Date.now() + 7_200_000).toISOString() });
    const draft = await createEvent(organiser, organisationId, {}, { open: false });
    const voter = await funded('early', 10_000);
    const tooEarly = await castVotes(voter, early.contestants[0], 1);
    expect(codeOf(tooEarly)).toBe('EVENT_NOT_OPEN');
    expect(tooEarly.errors![0].message).toMatch(/not opened yet/);
    expect(codeOf(await castVotes(voter, draft.contestants[0], 1))).toBe('CONTESTANT_NOT_FOUND');
  });
});

describe('organisations', () => {
  it('see only their own events, categories, contestants and votes (RLS), and cannot act on another\'s', async () => {
    const alice = await funded('org-a', 0);
    const bob = await funded('org-b', 0);
    const orgA = await createOrganisation(alice, 'A');
    const orgB = await createOrganisation(bob, 'B');
    const draftA = await createEvent(alice, orgA, {}, { open: false });
    const openA = await createEvent(alice, orgA);
    await createEvent(bob, orgB);
    const voter = await funded('voter', 10_000);
    ok(await castVotes(voter, openA.contestants[0], 1), 'castVotes');

    const eventsOf = async (token?: string) =>
      ok<any>(await stack.graphql(`{ allEvents { nodes { rowId organisationId status } } }`, {}, token), 'allEvents').nodes as any[];
    const bobSees = await eventsOf(bob.token);
    expect(bobSees.some((e) => e.rowId === draftA.eventId)).toBe(false);
    expect(bobSees.some((e) => e.rowId === openA.eventId)).toBe(true); // open events are public
    expect((await eventsOf()).some((e) => e.rowId === draftA.eventId)).toBe(false);
    expect((await eventsOf(alice.token)).some((e) => e.rowId === draftA.eventId)).toBe(true);
    const contestantsOf = async (token: string | undefined) =>
      ok<any>(await stack.graphql(`{ allContestants { nodes { rowId } } }`, {}, token), 'allContestants').nodes.map((c: any) => c.rowId);
    expect(await contestantsOf(bob.token)).not.toContain(draftA.contestants[0]);
    expect(await contestantsOf(undefined)).toContain(openA.contestants[0]);
    expect(await contestantsOf(alice.token)).toContain(draftA.contestants[0]);

    const votesOf = async (token: string) => ok<any>(await stack.graphql(`{ allVotes { nodes { rowId eventId } } }`, {}, token), 'allVotes').nodes as any[];
    expect((await votesOf(alice.token)).map((v) => v.eventId)).toEqual([openA.eventId]);
    expect(await votesOf(bob.token)).toEqual([]);
    expect((await votesOf(voter.token)).length).toBe(1);
    expect(ok<any>(await stack.graphql(`{ allOrganisations { nodes { rowId } } }`, {}, bob.token), 'allOrganisations').nodes).toEqual([{ rowId: orgB }]);
    // Balance of A's event: null for Bob.
    expect(ok<any>(await stack.graphql(`query($id: UUID!) { eventByRowId(rowId: $id) { balance } }`, { id: openA.eventId }, bob.token), 'eventByRowId').balance).toBeNull();

    // Acting on A's event as Bob.
    const addCategory = await stack.graphql(`mutation($c: CategoryInput!) { createCategory(input: { category: $c }) { category { rowId } } }`,
      { c: { eventId: draftA.eventId, name: 'Sneaky' } }, bob.token);
    expect(codeOf(addCategory)).toBe('PERMISSION_DENIED');
    const createInA = await stack.graphql(`mutation($e: EventInput!) { createEvent(input: { event: $e }) { event { rowId } } }`,
      { e: { organisationId: orgA, name: 'Hijack', opensAt: new Date().toISOString(), closesAt: new Date(Date.now() + 60_000).toISOString(), votePrice: '1' } }, bob.token);
    expect(codeOf(createInA)).toBe('PERMISSION_DENIED');
    expect(codeOf(await setStatus(bob, draftA.eventId, 'open'))).toBe('ORGANISATION_ACCESS_DENIED');
    const rename = await stack.graphql(`mutation($id: UUID!) { updateEventByRowId(input: { rowId: $id, eventPatch: { name: "Mine" } }) { event { name } } }`, { id: openA.eventId }, bob.token);
    expect(rename.data?.updateEventByRowId?.event ?? null).toBeNull(); // RLS: no row of Bob's to update
    const { rows } = await stack.owner.query(`select name from app_public.events where id = $1`, [openA.eventId]);
    expect(rows[0].name).not.toBe('Mine');
    const invite = await stack.graphql(`mutation($id: UUID!, $email: String!) { inviteJudge(input: { eventId: $id, email: $email }) { result { userId } } }`,
      { id: openA.eventId, email: bob.email }, bob.token);
    expect(codeOf(invite)).toBe('ORGANISATION_ACCESS_DENIED');
    // A member added by the owner sees the organisation's data.
    const carol = await funded('org-a-member', 0);
    ok(await stack.graphql(`mutation($o: UUID!, $e: String!) { addOrganisationMember(input: { organisationId: $o, email: $e }) { result { role } } }`,
      { o: orgA, e: carol.email.toUpperCase() }, alice.token), 'addOrganisationMember'); // emails match case-insensitively
    expect((await eventsOf(carol.token)).some((e) => e.rowId === draftA.eventId)).toBe(true);
    expect(codeOf(await stack.graphql(`mutation($o: UUID!, $e: String!) { addOrganisationMember(input: { organisationId: $o, email: $e }) { result { role } } }`,
      { o: orgA, e: bob.email }, carol.token))).toBe('ORGANISATION_ACCESS_DENIED');
  });
});

describe('free votes', () => {
  it('cost nothing when the event allows them, are still capped and idempotent', async () => {
    const organiser = await funded('organiser', 0);
    const organisationId = await createOrganisation(organiser);
    const notAllowed = await stack.graphql(`mutation($e: EventInput!) { createEvent(input: { event: $e }) { event { rowId } } }`, {
      e: { organisationId, name: 'Free?', opensAt: new Date().toISOString(), closesAt: new Date(Date.now() + 60_000).toISOString(), votePrice: '0' },
    }, organiser.token);
    expect(codeOf(notAllowed)).toBe('EVENT_SETTINGS_INVALID');
    const { categoryId, contestants: [a] } = await createEvent(organiser, organisationId, { votePrice: '0', allowFreeVotes: true, maxVotesPerVoterPerDay: 3 });
    const voter = await funded('free', 0);
    const key = randomUUID();
    const first = ok(await castVotes(voter, a, 2, key), 'castVotes').result;
    expect(first).toMatchObject({ amount: '0', entryId: null, status: 'counted' });
    const replays = await Promise.all([castVotes(voter, a, 2, key), castVotes(voter, a, 2, key)]);
    expect(replays.map((r) => ok(r, 'castVotes').result.rowId)).toEqual([first.rowId, first.rowId]);
    expect(codeOf(await castVotes(voter, a, 1, key))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(codeOf(await castVotes(voter, a, 2))).toBe('VOTE_CAP_REACHED');
    ok(await castVotes(voter, a, 1), 'castVotes');
    expect((await standings(categoryId))[a]).toBe(3);
  });
});

describe('fraud rules', () => {
  it('refuse a voter voting too fast (VOTE_VELOCITY_EXCEEDED)', async () => {
    const organiser = await funded('organiser', 0);
    const { contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser), { voterRequestsPerMinute: 2 });
    const voter = await funded('fast', 10_000);
    ok(await castVotes(voter, a, 1), 'castVotes');
    ok(await castVotes(voter, a, 1), 'castVotes');
    expect(codeOf(await castVotes(voter, a, 1))).toBe('VOTE_VELOCITY_EXCEEDED');
    expect(await walletBalance(voter.walletId)).toBe(10_000 - 2 * PRICE);
  });

  it('flag new accounts and busy client addresses; flagged votes wait for review; approve counts, reject refunds', async () => {
    const organiser = await funded('organiser', 0);
    const organisationId = await createOrganisation(organiser);
    const { eventId, categoryId, contestants: [a] } = await createEvent(organiser, organisationId, { newAccountAge: { hours: 1 } });
    const newcomer = await funded('newcomer', 10_000);
    const flagged = ok(await castVotes(newcomer, a, 2), 'castVotes').result;
    expect(flagged).toMatchObject({ status: 'flagged', flagReason: 'NEW_ACCOUNT', amount: '1000' });
    const second = ok(await castVotes(newcomer, a, 1), 'castVotes').result;
    expect((await standings(categoryId))[a]).toBe(0);

    // The organiser's review queue, and the auditor's view.
    const queue = ok<any>(await stack.graphql(`query($e: UUID!) { allVotes(condition: { eventId: $e, status: flagged }) { nodes { rowId flagReason } } }`,
      { e: eventId }, organiser.token), 'allVotes').nodes;
    expect(queue.map((v: any) => v.rowId).sort()).toEqual([flagged.rowId, second.rowId].sort());
    const audit = await stack.owner.query(`select status::text, flag_reason, voter_email from audit.flagged_votes where vote_id = $1`, [flagged.rowId]);
    expect(audit.rows).toEqual([{ status: 'flagged', flag_reason: 'NEW_ACCOUNT', voter_email: newcomer.email }]);
    // A stranger cannot review; the voter cannot either.
    const review = (person: Person, voteId: string, approve: boolean) => stack.graphql(
      `mutation($v: UUID!, $a: Boolean!) { reviewVote(input: { voteId: $v, approve: $a }) { result { status reviewedAt refundEntryId } } }`,
      { v: voteId, a: approve }, person.token);
    expect(codeOf(await review(newcomer, flagged.rowId, true))).toBe('ORGANISATION_ACCESS_DENIED');
    // Payouts wait for the review.
    await setStatus(organiser, eventId, 'closed');
    expect(codeOf(await stack.graphql(`mutation($e: UUID!) { withdrawEventFunds(input: { eventId: $e, amount: "100", idempotencyKey: "p1" }) { result { rowId } } }`,
      { e: eventId }, organiser.token))).toBe('EVENT_PAYOUT_NOT_ALLOWED');

    expect(ok(await review(organiser, flagged.rowId, true), 'reviewVote').result.status).toBe('counted');
    expect((await standings(categoryId, organiser.token))[a]).toBe(2);
    const rejected = ok(await review(organiser, second.rowId, false), 'reviewVote').result;
    expect(rejected.status).toBe('rejected');
    expect(rejected.refundEntryId).toBeTruthy();
    expect(await walletBalance(newcomer.walletId)).toBe(10_000 - 2 * PRICE);
    expect(codeOf(await review(organiser, second.rowId, true))).toBe('VOTE_NOT_REVIEWABLE');
    expect((await standings(categoryId, organiser.token))[a]).toBe(2);
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
    expect((await stack.owner.query(`select * from audit.leaderboard_drift`)).rows).toEqual([]);
  });

  it('flag votes from a client address that votes too often (ADDRESS_VELOCITY)', async () => {
    const organiser = await funded('organiser', 0);
    // Every test request comes from 127.0.0.1: allow what this file already sent in the last minute, plus one.
    const { rows } = await stack.owner.query(`select count(*)::int as n from app_public.votes where client_ip is not null and created_at > now() - interval '1 minute'`);
    const { contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser), { addressRequestsPerMinute: rows[0].n + 1 });
    const one = await funded('address-1', 10_000);
    const two = await funded('address-2', 10_000);
    expect(ok(await castVotes(one, a, 1), 'castVotes').result.status).toBe('counted');
    expect(ok(await castVotes(two, a, 1), 'castVotes').result).toMatchObject({ status: 'flagged', flagReason: 'ADDRESS_VELOCITY' });
  });
});

describe('judges and the published result', () => {
  it('combines public votes and judge scores with the event\'s weights; public once published', async () => {
    const organiser = await funded('organiser', 0);
    const { eventId, categoryId, contestants: [a, b] } = await createEvent(organiser, await createOrganisation(organiser), { publicWeight: 40, judgeWeight: 60 });
    const judge = await funded('judge', 0);
    const outsider = await funded('not-a-judge', 0);
    const invite = await stack.graphql(`mutation($id: UUID!, $email: String!) { inviteJudge(input: { eventId: $id, email: $email }) { result { userId } } }`,
      { id: eventId, email: judge.email }, organiser.token);
    expect(ok(invite, 'inviteJudge').result.userId).toBe(judge.userId);
    const score = (person: Person, contestantId: string, value: number) => stack.graphql(
      `mutation($c: UUID!, $s: Int!) { scoreContestant(input: { contestantId: $c, score: $s }) { result { score } } }`, { c: contestantId, s: value }, person.token);
    expect(codeOf(await score(outsider, a, 50))).toBe('JUDGE_NOT_INVITED');
    expect(codeOf(await score(judge, a, 101))).toBe('SCORE_INVALID');
    ok(await score(judge, a, 10), 'scoreContestant');
    ok(await score(judge, a, 20), 'scoreContestant'); // replaces 10
    ok(await score(judge, b, 90), 'scoreContestant');
    const voter = await funded('voter', 10_000);
    ok(await castVotes(voter, a, 3), 'castVotes');
    ok(await castVotes(voter, b, 1), 'castVotes');

    const results = (token?: string) => stack.graphql(`query($id: UUID!) { categoryResultsList(categoryId: $id) { contestantId votes voteShare judgeScore score rank } }`, { id: categoryId }, token);
    expect(codeOf(await results())).toBe('LEADERBOARD_HIDDEN');
    expect(codeOf(await setStatus(organiser, eventId, 'closed'))).toBeUndefined();
    expect(codeOf(await leaderboard(categoryId))).toBe('LEADERBOARD_HIDDEN'); // closed: counting, not public
    expect(codeOf(await setStatus(organiser, eventId, 'published'))).toBeUndefined();
    const published = ok<any[]>(await results(), 'categoryResultsList');
    // A: 40 × 3/4 + 60 × 20/100 = 42; B: 40 × 1/4 + 60 × 90/100 = 64.
    expect(published.map((r) => [r.contestantId, r.votes, Number(r.voteShare), Number(r.judgeScore), Number(r.score), r.rank])).toEqual([
      [b, '1', 25, 90, 64, 1],
      [a, '3', 75, 20, 42, 2],
    ]);
    expect(codeOf(await score(judge, a, 99))).toBe('EVENT_STATUS_INVALID');
  });
});

describe('leaderboard snapshots', () => {
  it('the cron function copies every open event\'s standings; the public reads them', async () => {
    const organiser = await funded('organiser', 0);
    const { categoryId, contestants: [a] } = await createEvent(organiser, await createOrganisation(organiser));
    const voter = await funded('voter', 10_000);
    ok(await castVotes(voter, a, 2), 'castVotes');
    await stack.owner.query(`select app_private.snapshot_leaderboards()`);
    const snapshots = ok<any>(await stack.graphql(`query($c: UUID!) { allLeaderboardSnapshots(condition: { categoryId: $c }) { nodes { contestantId votes rank } } }`, { c: categoryId }), 'allLeaderboardSnapshots').nodes;
    expect(snapshots).toContainEqual({ contestantId: a, votes: '2', rank: 1 });
  });
});

describe('payouts to the organiser', () => {
  it('move a closed event\'s takings to an owner\'s wallet, withdrawn through requestWithdrawal', async () => {
    const organiser = await funded('organiser', 0);
    const organisationId = await createOrganisation(organiser);
    const { eventId, contestants: [a] } = await createEvent(organiser, organisationId, { maxVotesPerRequest: 100 });
    const member = await funded('member', 0);
    ok(await stack.graphql(`mutation($o: UUID!, $e: String!) { addOrganisationMember(input: { organisationId: $o, email: $e }) { result { role } } }`,
      { o: organisationId, e: member.email }, organiser.token), 'addOrganisationMember');
    // Spread over several backends, so the money sits in several event-account shards.
    const voters = await Promise.all([1, 2, 3, 4].map((i) => funded(`payer-${i}`, 50_000)));
    await Promise.all(voters.map((v) => castVotes(v, a, 10)));
    const withdraw = (person: Person, amount: string, key = randomUUID()) => stack.graphql(
      `mutation($e: UUID!, $a: BigInt!, $k: String!) { withdrawEventFunds(input: { eventId: $e, amount: $a, idempotencyKey: $k }) { result { rowId amount } } }`,
      { e: eventId, a: amount, k: key }, person.token);
    expect(codeOf(await withdraw(organiser, '1000'))).toBe('EVENT_PAYOUT_NOT_ALLOWED'); // still open
    ok(await setStatus(organiser, eventId, 'closed'), 'setEventStatus');
    const takings = 4 * 10 * PRICE * 0.95;
    expect(await eventBalance(organiser, eventId)).toBe(takings);
    expect(codeOf(await withdraw(member, '1000'))).toBe('ORGANISATION_ACCESS_DENIED'); // owners only
    expect(codeOf(await withdraw(organiser, String(takings + 1)))).toBe('INSUFFICIENT_FUNDS');
    const key = randomUUID();
    const [p1, p2] = await Promise.all([withdraw(organiser, String(takings), key), withdraw(organiser, String(takings), key)]);
    expect(ok(p1, 'withdrawEventFunds').result.rowId).toBe(ok(p2, 'withdrawEventFunds').result.rowId);
    expect(await eventBalance(organiser, eventId)).toBe(0);
    expect(await walletBalance(organiser.walletId)).toBe(takings);

    // From here it is the ordinary withdrawal flow.
    const account = ok<any>(await stack.graphql(
      `mutation($i: AddBankAccountInput!) { addBankAccount(input: $i) { result { rowId } } }`,
      { i: { accountHolder: 'Stars Inc', bankName: 'FNB', branchCode: '250655', accountNumber: '62000123456', accountType: 'cheque' } },
      organiser.token), 'addBankAccount');
    const requested = ok<any>(await stack.graphql(
      `mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { result { rowId status amount } } }`,
      { i: { walletId: organiser.walletId, amount: '10000', bankAccountId: account.result.rowId, idempotencyKey: randomUUID() } },
      organiser.token), 'requestWithdrawal').result;
    expect(requested).toMatchObject({ status: 'requested', amount: '10000' });
    await eventually(async () => {
      const { rows } = await stack.owner.query(`select status::text from app_public.withdrawals where id = $1`, [requested.rowId]);
      return rows[0].status === 'submitted';
    }, 15_000, 'payout submitted to Revio');
    expect(await ledgerHealth(stack.owner)).toEqual(HEALTHY);
  });
});

describe('the leaderboard subscription', () => {
  it('delivers the standings on subscribing and again after each counted vote, over a real websocket', async () => {
    const organiser = await funded('organiser', 0);
    const { categoryId, contestants: [a, b] } = await createEvent(organiser, await createOrganisation(organiser));
    const voter = await funded('voter', 10_000);
    ok(await castVotes(voter, b, 1), 'castVotes');

    const client = createClient({ url: `${stack.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const received: any[] = [];
    const errors: unknown[] = [];
    const unsubscribe = client.subscribe(
      { query: `subscription($id: UUID!) { leaderboardChanged(categoryId: $id) { categoryId contestantId standings { contestantId votes rank } } }`, variables: { id: categoryId } },
      { next: (message) => void received.push(message), error: (error) => void errors.push(error), complete: () => undefined },
    );
    try {
      const initial = await eventually(async () => received[0] ?? (errors.length ? { errors } : undefined), 10_000, 'initial standings');
      expect(initial.errors).toBeUndefined();
      expect(initial.data.leaderboardChanged).toMatchObject({ categoryId, contestantId: null });
      expect(initial.data.leaderboardChanged.standings[0]).toEqual({ contestantId: b, votes: '1', rank: 1 });

      // Cast at once: likely inside the 100 ms after the announcement of b's
      // vote, so SQL does not announce it; the repeat of the first event must.
      ok(await castVotes(voter, a, 3), 'castVotes');
      const change = await eventually(async () =>
        received.find((m) => m.data?.leaderboardChanged?.standings?.find((s: any) => s.contestantId === a)?.votes === '3'), 10_000, 'leaderboard change');
      expect([a, null]).toContain(change.data.leaderboardChanged.contestantId);
      expect(change.data.leaderboardChanged.standings).toEqual([
        { contestantId: a, votes: '3', rank: 1 },
        { contestantId: b, votes: '1', rank: 2 },
      ]);
      // Votes within 100 ms of an announcement are not announced themselves
      // (app_private.tally_add); the trailing re-read still delivers them.
      const others = await Promise.all([funded('voter-2', 10_000), funded('voter-3', 10_000)]);
      await Promise.all(others.map((o) => castVotes(o, b, 2)));
      const caughtUp = await eventually(async () =>
        received.find((m) => m.data?.leaderboardChanged?.standings?.find((s: any) => s.contestantId === b)?.votes === '5'), 10_000, 'trailing standings');
      expect(caughtUp.data.leaderboardChanged.standings).toEqual([
        { contestantId: b, votes: '5', rank: 1 },
        { contestantId: a, votes: '3', rank: 2 },
      ]);
      expect(errors).toEqual([]);
    } finally {
      unsubscribe();
      await client.dispose();
    }
  });
});

// Subscription.leaderboardChanged(categoryId): live standings of a category.
//
// castVotes and reviewVote NOTIFY `voting:leaderboard:<category id>` in the
// transaction that changes the counters (sql/voting/votes.sql, delivered at
// commit). PostGraphile's pgSubscriber (one LISTEN connection per API
// process, from the pg service) turns that channel into a grafast stream;
// each event re-reads the standings through app_public.category_leaderboard
// with the subscriber's own pgSettings, so who may watch is decided by the
// same SQL that decides who may read (LEADERBOARD_HIDDEN otherwise). The
// first event arrives at once, so a client starts from the current standings.
//
// SQL announces a category at most once per 100 ms (NOTIFY takes a
// database-wide lock at commit; see app_private.tally_add). So that votes
// committed inside that window are not left unannounced, every notification
// is followed by one trailing event TRAILING_MS later (unless another
// notification came first), which re-reads the standings; so is the first
// event, for votes inside a window opened before the client subscribed.
import type {} from 'postgraphile';
import { jsonParse } from 'postgraphile/@dataplan/json';
import { loadOneWithPgClient } from 'postgraphile/@dataplan/pg';
import { context, lambda, listen, type GrafastSubscriber, type Step } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';

interface LeaderboardEvent {
  categoryId: string;
  contestantId?: string;
}

interface LeaderboardRow {
  contestant_id: string;
  contestant_name: string;
  votes: string;
  rank: number;
}

/** How long after a notification the standings are read once more. */
export const TRAILING_MS = 300;

/**
 * Yields every message of `source` and, when `delayMs` pass after one without
 * another, that message again. `owed`, if given, is repeated `delayMs` after
 * the start as if it had just been received. A plain iterator rather than an
 * async generator: return() (the client unsubscribing) must end `source` at
 * once, even while waiting for a message, or the LISTEN would outlive it.
 */
export function withTrailingRepeat<T>(source: AsyncIterator<T>, delayMs: number, owed?: T): AsyncIterableIterator<T> {
  const finished: IteratorResult<T> = { done: true, value: undefined };
  let last: { value: T } | undefined = owed === undefined ? undefined : { value: owed };
  let pending: Promise<IteratorResult<T>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stop: (() => void) | undefined;
  let done = false;
  const iterator: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => iterator,
    async next() {
      if (done) return finished;
      pending ??= source.next();
      const stopped = new Promise<'stop'>((resolve) => (stop = () => resolve('stop')));
      const waits: Promise<IteratorResult<T> | 'stop' | 'timeout'>[] = [pending, stopped];
      if (last) waits.push(new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), delayMs))));
      const result = await Promise.race(waits);
      clearTimeout(timer);
      if (result === 'stop') return finished;
      if (result === 'timeout') {
        const value = last!.value;
        last = undefined;
        return { done: false, value };
      }
      pending = undefined;
      if (result.done) {
        done = true;
        return finished;
      }
      last = { value: result.value };
      return result;
    },
    async return() {
      done = true;
      clearTimeout(timer);
      stop?.();
      await source.return?.();
      return finished;
    },
  };
  return iterator;
}

/**
 * Resolves once the subscriber's LISTEN for a topic just subscribed has run.
 * @dataplan/pg's PgSubscriber.subscribe() returns before its LISTEN reaches
 * PostgreSQL (it queues the LISTEN on an internal promise chain, `_chain`),
 * while grafast sends the initial event at once: a vote committed in between
 * would be announced to nobody, and the client would keep standings that
 * never moved. Waiting on that chain means the first event, and so
 * everything the client reads, comes after LISTEN is live.
 */
async function listening(subscriber: GrafastSubscriber): Promise<void> {
  await (subscriber as { _chain?: Promise<unknown> })._chain;
}

/**
 * pgSubscriber with a trailing repeat of each message, live before its first
 * event. The subscription's first event (the standings on subscribing) is
 * repeated too: a vote committed just after that read, inside the 100 ms of
 * an announcement made before the client subscribed, is announced to nobody,
 * and only this repeat delivers it.
 */
function trailingSubscriber(subscriber: GrafastSubscriber | null, firstEvent: string): GrafastSubscriber | null {
  if (!subscriber) return null;
  return {
    async subscribe(topic) {
      const source = await subscriber.subscribe(topic);
      await listening(subscriber);
      return withTrailingRepeat(source, TRAILING_MS, firstEvent);
    },
  };
}

/** The channel cast_votes notifies for a category. */
export const leaderboardTopic = (categoryId: string) => `voting:leaderboard:${categoryId}`;

export const LeaderboardSubscriptionPlugin = extendSchema((build) => {
  const executor = build.input.pgRegistry.pgExecutors.main;
  return {
    typeDefs: gql`
      """
      A contestant's place in a category's live standings.
      """
      type LeaderboardStanding {
        contestantId: UUID!
        contestantName: String!
        "Counted votes (flagged votes wait for review)."
        votes: BigInt!
        "1 for the most votes; ties share a rank."
        rank: Int!
      }
      """
      A change to a category's leaderboard, with its standings after the change.
      """
      type LeaderboardChange {
        categoryId: UUID!
        "The contestant whose votes changed; null for the first event, sent on subscribing."
        contestantId: UUID
        standings: [LeaderboardStanding!]!
      }
      extend type Subscription {
        """
        The standings of a category, now and after every change (votes counted, flagged votes approved).
        Same visibility as categoryLeaderboard.
        """
        leaderboardChanged(categoryId: UUID!): LeaderboardChange
      }
    `,
    objects: {
      Subscription: {
        plans: {
          leaderboardChanged: {
            subscribePlan(_$root, fieldArgs) {
              const $categoryId = fieldArgs.getRaw('categoryId');
              const $topic = lambda($categoryId, (id: string) => leaderboardTopic(id));
              const $initial = lambda($categoryId, (id: string) => JSON.stringify({ categoryId: id }));
              const $subscriber = lambda([context().get('pgSubscriber'), $initial], ([subscriber, initial]) => trailingSubscriber(subscriber, initial));
              return listen($subscriber, $topic, jsonParse, $initial);
            },
            plan($event) {
              return loadOneWithPgClient(executor, $event as Step<LeaderboardEvent>, async (client, events) =>
                Promise.all(
                  events.map(async (event) => {
                    const { rows } = await client.query<LeaderboardRow>({
                      text: 'select contestant_id, contestant_name, votes::text as votes, rank from app_public.category_leaderboard($1)',
                      values: [event.categoryId],
                    });
                    return {
                      categoryId: event.categoryId,
                      contestantId: event.contestantId ?? null,
                      standings: rows.map((r) => ({ contestantId: r.contestant_id, contestantName: r.contestant_name, votes: r.votes, rank: r.rank })),
                    };
                  }),
                ),
              );
            },
          },
        },
      },
    },
  };
}, 'PgWalletLeaderboardSubscriptionPlugin');

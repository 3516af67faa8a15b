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
// notification came first), which re-reads the standings.
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
 * another, that message again. A plain iterator rather than an async
 * generator: return() (the client unsubscribing) must end `source` at once,
 * even while waiting for a message, or the LISTEN would outlive it.
 */
export function withTrailingRepeat<T>(source: AsyncIterator<T>, delayMs: number): AsyncIterableIterator<T> {
  const finished: IteratorResult<T> = { done: true, value: undefined };
  let last: { value: T } | undefined;
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

/** pgSubscriber with a trailing repeat of each message. */
function trailingSubscriber(subscriber: GrafastSubscriber | null): GrafastSubscriber | null {
  if (!subscriber) return null;
  return {
    async subscribe(topic) {
      return withTrailingRepeat(await subscriber.subscribe(topic), TRAILING_MS);
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
              const $subscriber = lambda(context().get('pgSubscriber'), trailingSubscriber);
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

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
import type {} from 'postgraphile';
import { jsonParse } from 'postgraphile/@dataplan/json';
import { loadOneWithPgClient } from 'postgraphile/@dataplan/pg';
import { context, lambda, listen, type Step } from 'postgraphile/grafast';
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
              const $pgSubscriber = context().get('pgSubscriber');
              return listen($pgSubscriber, $topic, jsonParse, $initial);
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

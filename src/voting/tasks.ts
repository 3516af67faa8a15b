// Cron tasks of the voting product (registered in src/worker/tasks/index.ts).
// Each is one SQL call; the SQL functions they call are the whole list a
// narrower worker role would need EXECUTE on:
//   app_private.close_due_events()       — open events past closes_at → closed
//   app_private.snapshot_leaderboards()  — one snapshot of every open event's standings
import type { Task } from 'graphile-worker';

/** Every minute. Voting already stops at closes_at (cast_votes checks the time); this makes the status say so. */
export const votingCloseEvents: Task = async (_payload, helpers) => {
  const { rows } = await helpers.query<{ closed: number }>('select app_private.close_due_events() as closed');
  if (rows[0].closed > 0) helpers.logger.info(`closed ${rows[0].closed} event(s) past their closing time`);
};

/** Every 5 minutes: leaderboard history (app_public.leaderboard_snapshots). */
export const votingSnapshotLeaderboards: Task = async (_payload, helpers) => {
  const { rows } = await helpers.query<{ written: number }>('select app_private.snapshot_leaderboards() as written');
  if (rows[0].written > 0) helpers.logger.debug(`wrote ${rows[0].written} leaderboard snapshot row(s)`);
};

export const VOTING_CRON_ITEMS = [
  { task: 'voting_close_events', match: '* * * * *', identifier: 'voting_close_events', options: { backfillPeriod: 0, maxAttempts: 3 } },
  { task: 'voting_snapshot_leaderboards', match: '*/5 * * * *', identifier: 'voting_snapshot_leaderboards', options: { backfillPeriod: 0, maxAttempts: 3 } },
];

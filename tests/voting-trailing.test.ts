// The trailing repeat behind the leaderboard subscription: every message, one
// repeat after a quiet spell, and an unsubscribe that ends the source at once.
import { describe, expect, it } from 'vitest';
import { withTrailingRepeat } from '../src/voting/leaderboard-subscription.ts';

function channel<T>() {
  const queue: T[] = [];
  const waiting: ((r: IteratorResult<T>) => void)[] = [];
  let returned = false;
  const source: AsyncIterator<T> = {
    next: () => new Promise((resolve) => (queue.length ? resolve({ done: false, value: queue.shift()! }) : waiting.push(resolve))),
    return: async () => {
      returned = true;
      for (const w of waiting.splice(0)) w({ done: true, value: undefined });
      return { done: true, value: undefined };
    },
  };
  return {
    source,
    push: (value: T) => (waiting.length ? waiting.shift()!({ done: false, value }) : queue.push(value)),
    returned: () => returned,
  };
}

describe('withTrailingRepeat', () => {
  it('repeats the last message once after a quiet spell, not before', async () => {
    const { source, push } = channel<string>();
    const iterator = withTrailingRepeat(source, 50);
    push('a');
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    const started = Date.now();
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    // No second repeat: the next message is the next real one.
    setTimeout(() => push('b'), 120);
    expect(await iterator.next()).toEqual({ done: false, value: 'b' });
    await iterator.return!();
  });

  it('repeats an owed message after the delay even when the source stays silent', async () => {
    const { source, push } = channel<string>();
    const iterator = withTrailingRepeat(source, 50, 'first');
    const started = Date.now();
    expect(await iterator.next()).toEqual({ done: false, value: 'first' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    push('b');
    expect(await iterator.next()).toEqual({ done: false, value: 'b' });
    await iterator.return!();
  });

  it('ends the source at once when the consumer stops, even while waiting', async () => {
    const { source, returned } = channel<string>();
    const iterator = withTrailingRepeat(source, 50);
    const waiting = iterator.next();
    await iterator.return!();
    expect(returned()).toBe(true);
    expect(await waiting).toEqual({ done: true, value: undefined });
  });
});

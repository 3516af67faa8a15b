// The rate limiter counts in fixed windows (src/http/abuse.ts): a burst that
// straddles a window's end is counted half in each window, and a test
// expecting the Nth request to be refused would see it pass. Tests that count
// a burst wait, when the window is nearly over, for the next one to begin.

/** Waits until at least `needSeconds` remain in the current `windowSeconds` window. */
export async function roomInWindow(windowSeconds: number, needSeconds: number): Promise<void> {
  const left = windowSeconds - ((Date.now() / 1000) % windowSeconds);
  if (left < needSeconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 50));
}

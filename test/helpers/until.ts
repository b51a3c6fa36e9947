/**
 * Waits for a condition that a real backend makes true (a DNS answer, an etcd watch event, a file
 * watch): polls `predicate` every `everyMs` and fails with `what` after `timeoutMs`. For things
 * that cannot be awaited directly; never a fixed sleep.
 */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

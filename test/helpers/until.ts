/**
 * Waits for a condition that a real backend makes true (a DNS answer, an etcd watch event, a file
 * watch): polls `predicate` every `everyMs` and fails with `what` after `timeoutMs`. For things
 * that cannot be awaited directly; never a fixed sleep. Resolves with the ms it waited.
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 10,
): Promise<number> {
  const start = performance.now();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return performance.now() - start;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

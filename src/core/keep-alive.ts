/**
 * Keeps the process alive while a call waits on weft's own timers. Every weft timer is unref'd, so
 * an idle client or policy never holds a process open; but then a call waiting on one — a retry's
 * backoff, a `Retry-After`, a rate-limit token, an injected delay, a policy's function stuck with
 * no I/O — is a wait nothing holds, and a script that awaits it exits in the middle (with code 13
 * under a top-level await). Attempts in flight hold the loop by their sockets; these waits do not.
 *
 * One ref'd handle for the whole process, counted: ref'd while anything holds it, unref'd when
 * the last holder lets go (~15 ns a hold on these machines; no timer per wait).
 */
let holders = 0;
let handle: NodeJS.Timeout | null = null;

function noop(): void {}

/** One more wait (or policy call) in flight: the process stays up until it is released. */
export function hold(): void {
  if (holders++ !== 0) return;
  // eslint-disable-next-line no-restricted-globals -- a ref'd handle is the point: it keeps the process alive while calls wait on weft's unref'd timers; it never fires (24.8 days) and is unref'd when no call is in flight.
  if (handle === null) handle = setInterval(noop, 2 ** 31 - 1);
  else handle.ref();
}

/** That wait ended. */
export function release(): void {
  if (--holders === 0) handle?.unref();
}

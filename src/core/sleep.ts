/**
 * A wait on the shared deadline wheel that ends early, with the abort reason, when the call's
 * cancellation fires — so no backoff, Retry-After wait or injected delay outlives the call's
 * deadline or the caller's interest.
 */
import type { Cancellation } from "./cancel.js";
import { hold, release } from "./keep-alive.js";
import type { DeadlineWheel } from "./wheel.js";

export function sleep(wheel: DeadlineWheel, at: number, cancel: Cancellation | null): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (cancel?.aborted) {
      reject(cancel.reason);
      return;
    }
    // The wheel's timer is unref'd: the wait holds the process up itself (keep-alive.ts).
    hold();
    const onAbort = (): void => {
      entry.cancel();
      release();
      reject(cancel?.reason);
    };
    const entry = wheel.schedule(at, () => {
      cancel?.removeEventListener("abort", onAbort);
      release();
      resolve();
    });
    cancel?.addEventListener("abort", onAbort);
  });
}

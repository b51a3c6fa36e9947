/**
 * The one file that knows opossum. The breaker layer (`breaker.ts`) keeps each endpoint's state
 * (closed / open / half-open, probes in flight, the sleep window on weft's clock) itself and uses
 * opossum for what it is good at: the rolling window of successes and failures, and the decision
 * to open when the failure share of that window passes the threshold. This adapter is that
 * window, behind an interface of weft's own (`BreakerWindow`).
 *
 * What it relies on in opossum 9, beyond its documented `fire()` / `shutdown()` / events — each
 * checked by `opossum-adapter.test.ts`, which fails if an upgrade changes it:
 * - the `state: { closed: false, halfOpen: true }` option starts an instance half-open (documented
 *   in opossum's README, "Breaker State Initialization", but missing from @types/opossum);
 * - `pendingClose` is true while a half-open instance has not yet been decided by a fired call;
 * - `stats.successes` / `stats.failures` are the rolling window's sums;
 * - its window counts by listening to its own `"fire"` and `"success"` events, so emitting them
 *   counts a success the way `fire()` would, without `fire()`'s promise (~0.5 µs of the hot path);
 * - a `rotateBucketController`'s `"rotate"` event slides the window one bucket (`rotation.ts`
 *   drives every instance of a layer from one timer that way);
 * - a failure fired with an action that throws synchronously opens the instance (the `"open"`
 *   event) before `fire()` returns, so a breaker that opens has opened before the caller sees the
 *   response.
 */
import CircuitBreaker from "opossum";
import type { EventEmitter } from "node:events";

/** The event of a `rotateBucketController` that slides the windows listening to it. */
export const ROTATE_EVENT = "rotate";

/** One endpoint's rolling window and open decision. */
export interface BreakerWindow {
  /** True while the window still counts: closed, or half-open and not yet decided by a probe. */
  readonly counting: boolean;
  /** Successes plus failures in the window. */
  readonly calls: number;
  readonly failures: number;
  /** Counts a success: in the window while closed; a half-open window closes (`onClose`). */
  success(): void;
  /** Counts a failure: the window may open (`onOpen`, synchronously); a half-open one re-opens. */
  failure(): void;
  /** Stops the window for good (its own timers too); the counts stay readable. */
  shutdown(): void;
}

export interface BreakerWindowOptions {
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
  readonly rollingBuckets: number;
  /** The shared rotation (`rotation.ts`): an emitter of `ROTATE_EVENT`. */
  readonly rotateBucketController: EventEmitter;
  /** For opossum's own bookkeeping (it would otherwise generate a UUID per instance). */
  readonly name: string;
  readonly group: string;
  /** Start half-open: the first success closes it, the first failure re-opens it. */
  readonly halfOpen: boolean;
  readonly onOpen: () => void;
  readonly onClose: () => void;
}

/** What an instance is fired with: whether the call it reports failed. */
type Opossum = CircuitBreaker<[failed: boolean], void>;
type OpossumOptions = CircuitBreaker.Options<[failed: boolean]> & { state?: { closed: boolean; halfOpen: boolean } };

/** The largest delay `setTimeout` takes: opossum's own reset timer is never meant to fire. */
const MAX_TIMER_MS = 2_147_483_647;
const HALF_OPEN: OpossumOptions["state"] = Object.freeze({ closed: false, halfOpen: true });

/** The action every instance fires: fails at once (synchronously) for a failure. */
const REPORTED_FAILURE = new Error("weft: classified failure");
const RESOLVED: Promise<void> = Promise.resolve();
const report = (failed: boolean): Promise<void> => {
  if (failed) throw REPORTED_FAILURE;
  return RESOLVED;
};
const ignore = (): void => {};

class OpossumWindow implements BreakerWindow {
  readonly #breaker: Opossum;

  constructor(options: BreakerWindowOptions) {
    // A fresh options object per instance: opossum writes its defaults into the one it is given.
    const opossumOptions: OpossumOptions = {
      timeout: false, // weft times attempts (the attempt layer); opossum's would be a timer per call
      resetTimeout: MAX_TIMER_MS, // the breaker layer ends the sleep window on weft's clock
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.rollingWindowMs,
      rollingCountBuckets: options.rollingBuckets,
      rollingPercentilesEnabled: false, // no latency arrays sorted on every failure; weft measures latency
      enableSnapshots: false, // no snapshot interval per instance
      rotateBucketController: options.rotateBucketController, // no bucket interval per instance
      name: options.name,
      group: options.group,
    };
    if (options.halfOpen) opossumOptions.state = HALF_OPEN;
    this.#breaker = new CircuitBreaker(report, opossumOptions);
    this.#breaker.on("open", options.onOpen);
    this.#breaker.on("close", options.onClose);
  }

  get counting(): boolean {
    const b = this.#breaker;
    return b.closed || (b.halfOpen && b.pendingClose);
  }

  get calls(): number {
    const stats = this.#breaker.stats;
    return stats.successes + stats.failures;
  }

  get failures(): number {
    return this.#breaker.stats.failures;
  }

  success(): void {
    const b = this.#breaker;
    if (b.closed) {
      // Only the counters move: opossum keeps them by listening to its own events.
      b.emit("fire");
      b.emit("success", undefined, 0);
    } else void b.fire(false);
  }

  failure(): void {
    this.#breaker.fire(true).catch(ignore);
  }

  shutdown(): void {
    this.#breaker.shutdown();
  }
}

/** A rolling window that opens on the threshold, backed by one opossum instance (~7 KB). */
export function breakerWindow(options: BreakerWindowOptions): BreakerWindow {
  return new OpossumWindow(options);
}

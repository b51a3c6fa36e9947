/**
 * One clock for every breaker's rolling window. By default each opossum breaker owns a
 * `setInterval` that slides its window one bucket along (and another for snapshots): with
 * thousands of endpoints that is thousands of timers waking up every second. opossum 9 accepts a
 * `rotateBucketController` instead — an `EventEmitter` whose `"rotate"` event slides the window of
 * every breaker listening to it (status.js) — so a breaker layer hands its breakers controllers
 * from here and drives them all from a single timer on the injected clock: unref'd on the system
 * clock, deterministic on a fake one.
 *
 * Controllers are sharded, at most `SHARD_SIZE` breakers each: opossum scans a controller's
 * listeners when a breaker subscribes (`listenerCount(event, listener)`) and when it unsubscribes,
 * so one emitter for 10 000 breakers would make each new endpoint cost ~50 µs and close() quadratic.
 *
 * The timer runs only while some breaker listens (a breaker stops listening when it is shut
 * down), and a tick that comes late slides the window once per bucket it missed, so the window
 * stays true to the clock after an event-loop stall.
 */
import { EventEmitter } from "node:events";
import type { Clock, TimerHandle } from "../core/clock.js";
import { ROTATE_EVENT as ROTATE } from "./opossum-adapter.js";

/** Breakers per controller: keeps opossum's listener scans to a few hundred comparisons. */
const SHARD_SIZE = 256;

export class BucketRotation {
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #buckets: number;
  readonly #controllers: EventEmitter[] = [];
  #timer: TimerHandle | null = null;
  /** Clock time the next rotation is due. */
  #due = 0;
  #stopped = false;

  constructor(clock: Clock, windowMs: number, buckets: number) {
    this.#clock = clock;
    this.#bucketMs = windowMs / buckets;
    this.#buckets = buckets;
  }

  /** Breakers listening for rotations (those neither open nor shut down). */
  get listeners(): number {
    let n = 0;
    for (const controller of this.#controllers) n += controller.listenerCount(ROTATE);
    return n;
  }

  /** True while the timer is armed. */
  get running(): boolean {
    return this.#timer !== null;
  }

  /**
   * A controller with room, to pass as a new breaker's `rotateBucketController`; arms the timer if
   * it is not running.
   */
  controller(): EventEmitter {
    this.#start();
    for (const controller of this.#controllers) {
      if (controller.listenerCount(ROTATE) < SHARD_SIZE) return controller;
    }
    const controller = new EventEmitter();
    controller.setMaxListeners(0); // SHARD_SIZE listeners each: expected, not a leak
    this.#controllers.push(controller);
    return controller;
  }

  /**
   * Stops for good (the layer is closed). Dropping every listener first makes each breaker's own
   * `removeListener` at shutdown O(1).
   */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    for (const controller of this.#controllers) controller.removeAllListeners();
  }

  #start(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#due = this.#clock.now() + this.#bucketMs;
    this.#arm();
  }

  #arm(): void {
    this.#timer = this.#clock.setTimer(this.#tick, this.#due - this.#clock.now());
  }

  readonly #tick = (): void => {
    this.#timer = null;
    if (this.#stopped || this.listeners === 0) return;
    // A tick that comes late slides once per bucket it missed (beyond a whole window every bucket
    // is empty anyway); one that comes a hair early (timer rounding) slides once.
    const missed = Math.floor(Math.max(0, this.#clock.now() - this.#due) / this.#bucketMs);
    const slides = Math.min(this.#buckets, 1 + missed);
    for (let i = 0; i < slides; i++) {
      for (const controller of this.#controllers) controller.emit(ROTATE);
    }
    this.#due += this.#bucketMs * (1 + missed);
    this.#arm();
  };
}

/**
 * A call that is waiting — for a concurrency slot or for a rate-limit token. Every wait in weft
 * ends at a time and when the call is cancelled (STYLE 7): the time is an entry in the shared
 * deadline wheel (no `setTimeout`, no `AbortController` per wait) and cancellation is one listener
 * on the call's `Cancellation`. Whichever comes first, or the owner handing the call on, ends the
 * wait; the other two are then disarmed, so a finished wait leaves nothing behind.
 *
 * The waiter is its own queue node, so the bulkhead drops a cancelled waiter from the middle of
 * its line in O(1).
 */
import { hold, release } from "../core/keep-alive.js";
import type { DeadlineWheel, Scheduled } from "../core/wheel.js";
import type { MeshRequest, MeshResponse, Service } from "../core/types.js";
import { QueueNode } from "./queue.js";

/** What a waiter reports to the limit that made it. */
export interface WaitOwner {
  /** The wait's time came (a deadline, or the moment a token is ready). */
  onTime(waiter: Waiter): void;
  /** The call's cancellation was aborted (by the caller or the total deadline) while it waited. */
  onCancel(waiter: Waiter, reason: unknown): void;
}

/** Calls `next(req)` once the wait is over: the limit's own accounting around the call. */
export type Run = (next: Service, req: MeshRequest) => Promise<MeshResponse>;

export class Waiter extends QueueNode {
  readonly req: MeshRequest;
  readonly next: Service;
  /** When the wait began, ms on the limit's clock. */
  readonly sinceMs: number;
  /** Settles with the call's response once it has run, or with the wait's failure. */
  readonly promise: Promise<MeshResponse>;
  #resolve!: (value: Promise<MeshResponse>) => void;
  #reject!: (error: unknown) => void;
  #entry: Scheduled | null = null;
  #onAbort: (() => void) | null = null;
  #done = false;

  /**
   * @param at when `owner.onTime` fires, ms on the wheel's clock; `Infinity` for never
   */
  constructor(owner: WaitOwner, req: MeshRequest, next: Service, sinceMs: number, wheel: DeadlineWheel, at: number) {
    super();
    this.req = req;
    this.next = next;
    this.sinceMs = sinceMs;
    this.promise = new Promise<MeshResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (at !== Infinity) {
      this.#entry = wheel.schedule(at, () => owner.onTime(this));
      // A timed wait (a rate-limit token) holds the process up; the wheel's timer does not.
      hold();
    }
    const cancel = req.cancel;
    if (cancel !== null) {
      // An abort calls the listeners it had when it began: this one may run after the wait ended.
      this.#onAbort = () => {
        if (!this.#done) owner.onCancel(this, cancel.reason);
      };
      cancel.addEventListener("abort", this.#onAbort);
    }
  }

  /** True once the wait has ended (the call ran or failed). */
  get done(): boolean {
    return this.#done;
  }

  /** Ends the wait by running the call: the waiter's promise follows `run(next, req)`. */
  proceed(run: Run): void {
    if (!this.#finish()) return;
    this.#resolve(run(this.next, this.req));
  }

  /** Ends the wait with `error`; the call never runs. */
  fail(error: unknown): void {
    if (!this.#finish()) return;
    this.#reject(error);
  }

  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    if (this.#entry !== null) {
      this.#entry.cancel();
      this.#entry = null;
      release();
    }
    if (this.#onAbort !== null) {
      this.req.cancel?.removeEventListener("abort", this.#onAbort);
      this.#onAbort = null;
    }
    return true;
  }
}

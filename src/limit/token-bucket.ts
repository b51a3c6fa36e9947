/**
 * A token bucket for the client-side rate limit: it holds at most `burst` tokens and gains
 * `perSecond` of them per second; a call takes one. Refill is computed from the time elapsed since
 * the last look (`tokens += elapsed × perSecond`), so there is no interval timer: an idle bucket
 * costs nothing.
 *
 * A call that finds no token may *reserve* one (golang.org/x/time/rate's `Reserve`, Guava's
 * RateLimiter): the count goes below zero and the call waits until refill brings it back to zero.
 * Debt makes the waiters first-come, first-served without a queue: each reservation pushes the
 * next one's ready time back by 1 / perSecond. A reservation given back (its caller cancelled)
 * returns the token; waiters already scheduled keep their times (they may wake slightly later than
 * needed), as in x/time/rate.
 *
 * Pure: time comes in as numbers (ms on any monotonic clock), no timer.
 */

export interface TokenBucketConfig {
  /** Tokens added per second (may be fractional: 0.5 = one call every 2 s). */
  readonly perSecond: number;
  /** Most tokens the bucket holds: the burst allowed after a quiet spell. At least 1. */
  readonly burst: number;
}

export class TokenBucket {
  readonly perSecond: number;
  readonly burst: number;
  readonly #perMs: number;
  /** Tokens now; negative while calls hold reservations against future refill. */
  #tokens: number;
  #lastMs: number;

  /** Starts full at `nowMs`. */
  constructor(config: TokenBucketConfig, nowMs: number) {
    this.perSecond = config.perSecond;
    this.burst = config.burst;
    this.#perMs = config.perSecond / 1000;
    this.#tokens = config.burst;
    this.#lastMs = nowMs;
  }

  /** Tokens available at `nowMs` (negative: that many are owed to waiting calls). */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /** Takes a token if one is there now. The hot path: one refill and a compare. */
  tryTake(nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** How long until a token taken now would exist, ms: 0 when one is there now. */
  waitMs(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens >= 1 ? 0 : (1 - this.#tokens) / this.#perMs;
  }

  /**
   * Takes a token now, into debt when there is none, and returns how long the caller must wait
   * for it, ms (the same as `waitMs` just before). The caller decides first whether it can wait.
   */
  reserve(nowMs: number): number {
    const wait = this.waitMs(nowMs);
    this.#tokens -= 1;
    return wait;
  }

  /** Returns a reserved token whose call will not be made (never above `burst`). */
  giveBack(nowMs: number): void {
    this.#refill(nowMs);
    this.#tokens = Math.min(this.burst, this.#tokens + 1);
  }

  #refill(nowMs: number): void {
    const elapsed = nowMs - this.#lastMs;
    // A clock that does not move (or steps back) adds nothing.
    if (elapsed <= 0) return;
    this.#lastMs = nowMs;
    if (this.#tokens < this.burst) this.#tokens = Math.min(this.burst, this.#tokens + elapsed * this.#perMs);
  }
}

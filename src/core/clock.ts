/**
 * Injected time and randomness (Finagle's `nanoTime`/`rng`, Tower's `from_rng`): every policy
 * reads `clock.now()` and `random()` so tests drive time with `fakeClock()` and a seeded random.
 */
import { performance } from "node:perf_hooks";

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (fractional). Only differences are meaningful. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for HTTP dates (`Retry-After`). */
  wallNow(): number;
  /** Runs `fn` once after `ms`. System timers are unref'd: a pending timer never keeps a process alive. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
});

export const systemRandom: Random = Math.random;

/**
 * A small, fast seeded generator (mulberry32) for deterministic tests and benchmarks.
 * @example const random = seededRandom(42);
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

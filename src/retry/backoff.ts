/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * the wait before retry n is uniform in [0, min(maxMs, baseMs × 2^(n-1))]. Full jitter spreads
 * the retries of many clients that failed together, so they do not return together.
 */
export interface BackoffConfig {
  /** The cap of the first retry's wait, ms. Default 25. */
  readonly baseMs: number;
  /** The largest wait, ms. Default 1 000. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = Object.freeze({ baseMs: 25, maxMs: 1_000 });

/** The wait before retry `retry` (1 for the first retry), given a uniform `random` in [0, 1). */
export function backoffMs(config: BackoffConfig, retry: number, random: number): number {
  const ceiling = Math.min(config.maxMs, config.baseMs * 2 ** Math.min(Math.max(0, retry - 1), 30));
  return random * ceiling;
}

/**
 * The rules of active health checking, without timers or sockets: whether a status passes, when
 * a run of results flips an endpoint's verdict, and when the next check goes out.
 *
 * - **Hysteresis.** An endpoint turns unhealthy after `unhealthyThreshold` failed checks in a row
 *   and healthy again after `healthyThreshold` passed checks in a row (Envoy's, HAProxy's `rise` /
 *   `fall`); a result that agrees with the current verdict clears the opposite run.
 * - **Jitter.** Checks of many endpoints (and of many clients of one service) must not line up:
 *   the first check of an endpoint falls anywhere in its first interval, and each later one
 *   `intervalMs × [0.9, 1.1)` after the previous one started (Envoy's `interval_jitter_percent`,
 *   here 10 %). Without it, every client restarted by one deploy would check every replica in
 *   the same millisecond, forever.
 */
import type { HealthCheckConfig } from "./health-check-options.js";

/** One endpoint's verdict and the runs of results that may change it. */
export interface CheckStreak {
  healthy: boolean;
  /** Passed checks in a row (counted while unhealthy). */
  passes: number;
  /** Failed checks in a row (counted while healthy). */
  fails: number;
}

/**
 * Records one check result; returns true when the verdict flipped.
 * @example
 * const s = { healthy: true, passes: 0, fails: 0 };
 * recordCheck(s, false, 2, 3); recordCheck(s, false, 2, 3); // false, false
 * recordCheck(s, false, 2, 3); // true: s.healthy is now false
 */
export function recordCheck(
  streak: CheckStreak,
  passed: boolean,
  healthyThreshold: number,
  unhealthyThreshold: number,
): boolean {
  if (passed) {
    streak.fails = 0;
    if (streak.healthy) return false;
    if (++streak.passes < healthyThreshold) return false;
    streak.healthy = true;
    streak.passes = 0;
    return true;
  }
  streak.passes = 0;
  if (!streak.healthy) return false;
  if (++streak.fails < unhealthyThreshold) return false;
  streak.healthy = false;
  streak.fails = 0;
  return true;
}

/** True when `status` passes: one of `expectedStatus`, or any 2xx when it is null. */
export function isExpectedStatus(config: Pick<HealthCheckConfig, "expectedStatus">, status: number): boolean {
  const expected = config.expectedStatus;
  return expected === null ? status >= 200 && status < 300 : expected.includes(status);
}

/** Share of the interval each later check may move either way. */
const INTERVAL_JITTER = 0.1;

/** Delay of an endpoint's first check: anywhere in its first interval (`r` uniform in [0, 1)). */
export function firstCheckDelayMs(intervalMs: number, r: number): number {
  return intervalMs * r;
}

/** Time from one check's start to the next one's: `intervalMs × [0.9, 1.1)` (`r` uniform in [0, 1)). */
export function nextCheckDelayMs(intervalMs: number, r: number): number {
  return intervalMs * (1 - INTERVAL_JITTER + 2 * INTERVAL_JITTER * r);
}

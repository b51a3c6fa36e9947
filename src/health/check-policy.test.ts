import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import {
  firstCheckDelayMs,
  isExpectedStatus,
  nextCheckDelayMs,
  recordCheck,
  type CheckStreak,
} from "./check-policy.js";

/** Feeds results (true = passed) and returns the verdict after each. */
function run(streak: CheckStreak, results: boolean[]): boolean[] {
  return results.map((passed) => {
    recordCheck(streak, passed, 2, 3);
    return streak.healthy;
  });
}

describe("recordCheck", () => {
  it("turns unhealthy on the third failure in a row and healthy on the second pass in a row", () => {
    const streak: CheckStreak = { healthy: true, passes: 0, fails: 0 };
    expect(run(streak, [false, false, false])).toEqual([true, true, false]);
    expect(run(streak, [true, true])).toEqual([false, true]);
  });

  it("reports a flip only on the result that flips", () => {
    const streak: CheckStreak = { healthy: true, passes: 0, fails: 0 };
    const flips = [false, false, false, false, true, true, true].map((passed) => recordCheck(streak, passed, 2, 3));
    expect(flips).toEqual([false, false, true, false, false, true, false]);
  });

  it("needs the runs unbroken: a pass clears the failures, a failure clears the passes", () => {
    const streak: CheckStreak = { healthy: true, passes: 0, fails: 0 };
    expect(run(streak, [false, false, true, false, false])).toEqual([true, true, true, true, true]);
    run(streak, [false]);
    expect(streak.healthy).toBe(false);
    expect(run(streak, [true, false, true, false])).toEqual([false, false, false, false]);
  });

  it("flips on the first result with thresholds of 1", () => {
    const streak: CheckStreak = { healthy: true, passes: 0, fails: 0 };
    expect(recordCheck(streak, false, 1, 1)).toBe(true);
    expect(recordCheck(streak, true, 1, 1)).toBe(true);
    expect(streak.healthy).toBe(true);
  });
});

describe("isExpectedStatus", () => {
  it("passes any 2xx by default", () => {
    const config = { expectedStatus: null };
    expect([199, 200, 204, 299, 300, 404, 503].map((s) => isExpectedStatus(config, s))).toEqual([
      false,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it("passes only the listed statuses when given", () => {
    const config = { expectedStatus: [200, 429] };
    expect([200, 204, 429].map((s) => isExpectedStatus(config, s))).toEqual([true, false, true]);
  });
});

describe("check timing", () => {
  it("spreads first checks over the whole first interval", () => {
    expect(firstCheckDelayMs(10_000, 0)).toBe(0);
    expect(firstCheckDelayMs(10_000, 0.999)).toBeCloseTo(9990);
  });

  it("jitters later checks within ±10 % of the interval", () => {
    expect(nextCheckDelayMs(10_000, 0)).toBe(9000);
    expect(nextCheckDelayMs(10_000, 0.5)).toBe(10_000);
    const random = seededRandom(3);
    for (let i = 0; i < 1000; i++) {
      const delay = nextCheckDelayMs(10_000, random());
      expect(delay).toBeGreaterThanOrEqual(9000);
      expect(delay).toBeLessThan(11_000);
    }
  });
});

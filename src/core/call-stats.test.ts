import { describe, expect, it } from "vitest";
import { bucketOf, bucketUpperMs, CallStats } from "./call-stats.js";

describe("CallStats", () => {
  it("reports rates, success % (ignorable left out) and percentiles over the window", () => {
    const stats = new CallStats(300, 10);
    // 10 seconds, 10 calls each: 9 successes of 10 ms, 1 failure of 200 ms; one ignorable per second.
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 9; i++) stats.record(s * 1000 + i, 10, 1, 0, 0);
      stats.record(s * 1000 + 500, 200, -1, 2, 1);
      stats.record(s * 1000 + 600, 5, 0, 0, 0);
    }
    const { window } = stats.snapshot(9_999, 1_000_000);
    expect(window.seconds).toBe(10);
    expect(window.requestsPerSecond).toBe(11);
    expect(window.successPercent).toBe(90);
    expect(window.retriesPerSecond).toBe(2);
    expect(window.hedgesPerSecond).toBe(1);
    // Within one bucket (25 %) above the true value.
    expect(window.latencyMs?.p50).toBeGreaterThanOrEqual(10);
    expect(window.latencyMs?.p50).toBeLessThanOrEqual(12.5);
    expect(window.latencyMs?.p99).toBe(200);
    expect(window.latencyMs?.max).toBe(200);
  });

  it("forgets seconds older than the window and keeps one history point per second", () => {
    const stats = new CallStats(60, 10);
    stats.record(0, 100, -1, 0, 0);
    stats.record(30_500, 5, 1, 0, 0);
    const snap = stats.snapshot(30_900, 2_000_000);
    expect(snap.window.successPercent).toBe(100);
    expect(snap.window.latencyMs?.max).toBe(5);
    expect(snap.history).toHaveLength(31);
    expect(snap.history[0]).toMatchObject({ requests: 1, failures: 1, p99Ms: 100 });
    expect(snap.history[15]).toMatchObject({ requests: 0, p50Ms: null });
    expect(snap.history[30]).toMatchObject({ requests: 1, successes: 1 });
    // Dated on the wall clock: the last point is the current second.
    expect(snap.history[30]?.at).toBe(2_000_000 - 900);
  });

  it("reuses a ring slot for a new second without mixing in the old counts", () => {
    const stats = new CallStats(5, 5);
    stats.record(1_000, 10, 1, 0, 0);
    stats.record(6_000, 50, -1, 0, 0); // same slot as second 1
    const snap = stats.snapshot(6_100, 0);
    expect(snap.history).toHaveLength(5);
    expect(snap.history.reduce((n, p) => n + p.requests, 0)).toBe(1);
    expect(snap.window.successPercent).toBe(0);
  });

  it("has no figures before the first call", () => {
    const snap = new CallStats().snapshot(5_000, 0);
    expect(snap.window).toMatchObject({ requestsPerSecond: 0, successPercent: null, latencyMs: null });
    expect(snap.history).toHaveLength(1);
  });
});

describe("latency buckets", () => {
  it("grow by 25 % and put each latency in the bucket whose bound is at or above it", () => {
    for (const ms of [0.01, 0.3, 1, 7.7, 42, 999, 12_345]) {
      const b = bucketOf(ms);
      expect(bucketUpperMs(b)).toBeGreaterThanOrEqual(Math.min(ms, bucketUpperMs(63)) - 1e-9);
      if (b > 0) expect(bucketUpperMs(b - 1)).toBeLessThan(ms);
    }
    expect(bucketOf(1e9)).toBe(63);
  });
});

import { describe, expect, it } from "vitest";
import { ADAPTIVE_LIMIT_DEFAULTS, AdaptiveLimit, type AdaptiveLimitConfig } from "./adaptive-limit.js";

/**
 * Runs one window: `n` requests of `rttMs` finishing over [at − 100, at), with at most `inflight`
 * in flight, then closes it at `at`. A window is "full" when `inflight` reaches the limit.
 */
function window(limit: AdaptiveLimit, at: number, rttMs: number, inflight: number, n = 20): number {
  limit.observeInflight(inflight);
  for (let i = 0; i < n; i++) limit.record(rttMs, at - 100 + i);
  limit.tick(at);
  return limit.limit;
}

/** A window that used most of the limit but did not fill it. */
const busy = (limit: AdaptiveLimit): number => Math.max(1, limit.limit - 1);

const config = (over: Partial<AdaptiveLimitConfig> = {}): AdaptiveLimitConfig => ({
  ...ADAPTIVE_LIMIT_DEFAULTS,
  ...over,
});

describe("AdaptiveLimit (Envoy's gradient controller)", () => {
  it("grows while the latency stays at the no-load level and the limit is used", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20 }));
    let at = 0;
    const seen: number[] = [];
    for (let w = 0; w < 6; w++) seen.push(window(limit, (at += 100), 10, busy(limit)));
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
    expect(limit.minRttMs).toBe(10);
  });

  it("cuts the limit when latency rises past the buffer over the no-load level, not before", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 40 }));
    let at = 0;
    window(limit, (at += 100), 10, 39);
    const before = limit.limit;
    // 20 % slower: inside the 25 % buffer, so no cut.
    expect(window(limit, (at += 100), 12, busy(limit))).toBeGreaterThanOrEqual(before);
    // 3× slower: queueing. The gradient's 0.5 floor roughly halves it.
    const high = limit.limit;
    const cut = window(limit, at + 100, 30, busy(limit));
    expect(cut).toBeLessThanOrEqual(Math.floor(high * 0.5 + Math.sqrt(high * 0.5)));
    expect(limit.minRttMs).toBe(10);
  });

  it("does not raise a limit that was never half used (application-limited), but may lower it", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 100 }));
    let at = 0;
    for (let w = 0; w < 5; w++) window(limit, (at += 100), 10, 10);
    expect(limit.limit).toBe(100);
    // Slower, still lightly used: the gradient says queueing, and that is believed.
    expect(window(limit, at + 100, 40, 10)).toBeLessThan(100);
  });

  it("holds a window open until it has minSamples and windowMs has passed", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minSamples: 10 }));
    limit.observeInflight(10);
    for (let i = 0; i < 9; i++) limit.record(10, 200 + i);
    // Past windowMs but one sample short: still open.
    limit.tick(400);
    expect(Number.isNaN(limit.sampleRttMs)).toBe(true);
    const fresh = new AdaptiveLimit(config({ initialLimit: 20, minSamples: 10 }));
    for (let i = 0; i < 10; i++) fresh.record(10, 200 + i);
    // Ten samples but younger than windowMs: still open.
    fresh.tick(250);
    expect(Number.isNaN(fresh.sampleRttMs)).toBe(true);
    limit.record(10, 401);
    limit.tick(402);
    expect(limit.sampleRttMs).toBe(10);
  });

  it("stays within minLimit and maxLimit", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 10, minLimit: 4, maxLimit: 12 }));
    let at = 0;
    window(limit, (at += 100), 1, 9);
    for (let w = 0; w < 10; w++) window(limit, (at += 100), 1, busy(limit));
    expect(limit.limit).toBe(12);
    for (let w = 0; w < 10; w++) window(limit, (at += 100), 100, busy(limit));
    expect(limit.limit).toBe(4);
  });

  it("takes the median of the window, so one slow outlier does not cut the limit", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20 }));
    limit.observeInflight(15);
    for (let i = 0; i < 19; i++) limit.record(10, 100 + i);
    limit.record(500, 150);
    limit.tick(200);
    expect(limit.sampleRttMs).toBe(10);
  });

  it("never lets a full window raise the no-load latency: its p50 is the limit's own queue", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minRttWindowMs: 60_000 }));
    let at = 0;
    window(limit, (at += 100), 10, 19);
    for (let w = 0; w < 50; w++) window(limit, (at += 100), 25, limit.limit);
    expect(limit.minRttMs).toBe(10);
    // …but a full window may lower it.
    window(limit, at + 100, 6, limit.limit);
    expect(limit.minRttMs).toBe(6);
  });

  it("measures the no-load latency at minLimit once every window of minRttWindowMs was full", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minLimit: 3, minRttWindowMs: 1000 }));
    let at = 0;
    window(limit, (at += 100), 10, 19);
    for (let w = 0; w < 9; w++) window(limit, (at += 100), 30, limit.limit);
    expect(limit.measuringMinRtt).toBe(false);
    const before = window(limit, (at += 100), 30, limit.limit);
    window(limit, (at += 100), 30, limit.limit);
    expect(limit.measuringMinRtt).toBe(true);
    expect(limit.limit).toBe(3);
    // Requests admitted before the drop still finishing slowly do not count; those after it do.
    for (let i = 0; i < 5; i++) limit.record(300, at + 1 + i);
    for (let i = 0; i < 10; i++) limit.record(12, at + 20 + i);
    limit.tick(at + 101);
    expect(limit.measuringMinRtt).toBe(false);
    expect(limit.minRttMs).toBe(12);
    // Back to the estimate the full windows left (cut to the floor by their queueing), not pinned:
    // a window at the no-load latency grows it again.
    expect(before).toBeGreaterThanOrEqual(limit.limit);
    const after = limit.limit;
    expect(window(limit, at + 201, 12, busy(limit))).toBeGreaterThan(after);
  });

  it("measures at once when the very first window is already full (a cold start into load)", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minLimit: 3 }));
    window(limit, 100, 40, 20);
    expect(limit.measuringMinRtt).toBe(true);
    expect(limit.limit).toBe(3);
    for (let i = 0; i < 10; i++) limit.record(10, 110 + i);
    limit.tick(201);
    expect(limit.minRttMs).toBe(10);
  });

  it("keeps the old reading when a measurement cannot gather minSamples", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minLimit: 3, minSamples: 10 }));
    window(limit, 100, 40, 20);
    expect(limit.measuringMinRtt).toBe(true);
    for (let i = 0; i < 3; i++) limit.record(5, 110 + i);
    limit.tick(100 + 10 * 100);
    expect(limit.measuringMinRtt).toBe(false);
    expect(limit.minRttMs).toBe(40);
  });

  it("takes in a service that got slower for good through the measurement", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minRttWindowMs: 1000 }));
    let at = 0;
    window(limit, (at += 100), 5, 19);
    for (let w = 0; w < 12 && !limit.measuringMinRtt; w++) window(limit, (at += 100), 20, limit.limit);
    expect(limit.measuringMinRtt).toBe(true);
    // Admitted after the drop: each finished 20 ms after it started, past the drop.
    for (let i = 0; i < 10; i++) limit.record(20, at + 30 + i);
    limit.tick(at + 101);
    expect(limit.minRttMs).toBe(20);
    const recovered = limit.limit;
    expect(window(limit, at + 201, 20, busy(limit))).toBeGreaterThan(recovered);
  });
});

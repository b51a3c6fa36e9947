import { describe, expect, it } from "vitest";
import { ADAPTIVE_LIMIT_DEFAULTS, AdaptiveLimit, type AdaptiveLimitConfig } from "./adaptive-limit.js";

/** Runs one window: `n` requests of `rttMs` from `at − 100` on, with `inflight` in flight; closes it at `at`. */
function window(limit: AdaptiveLimit, at: number, rttMs: number, inflight: number, n = 20): number {
  limit.observeInflight(inflight);
  for (let i = 0; i < n; i++) limit.record(rttMs, at - 100 + i);
  limit.tick(at);
  return limit.limit;
}

const config = (over: Partial<AdaptiveLimitConfig> = {}): AdaptiveLimitConfig => ({ ...ADAPTIVE_LIMIT_DEFAULTS, ...over });

describe("AdaptiveLimit (Envoy's gradient controller)", () => {
  it("grows while the latency stays at the no-load level and the limit is used", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20 }));
    let at = 0;
    const seen: number[] = [];
    for (let w = 0; w < 6; w++) seen.push(window(limit, (at += 100), 10, limit.limit));
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
    expect(limit.minRttMs).toBe(10);
  });

  it("cuts the limit when latency rises past the buffer over the no-load level, not before", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 40 }));
    let at = 0;
    window(limit, (at += 100), 10, 40);
    const before = limit.limit;
    // 20 % slower: inside the 25 % buffer, so no cut.
    expect(window(limit, (at += 100), 12, limit.limit)).toBeGreaterThanOrEqual(before);
    // 3× slower: queueing. The gradient (0.5 floor) roughly halves it.
    const high = limit.limit;
    const cut = window(limit, (at += 100), 30, limit.limit);
    expect(cut).toBeLessThan(high * 0.6 + Math.sqrt(high) + 1);
    expect(cut).toBeLessThan(high);
  });

  it("does not raise a limit that was never half used (application-limited)", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 100 }));
    let at = 0;
    for (let w = 0; w < 5; w++) window(limit, (at += 100), 10, 10);
    expect(limit.limit).toBe(100);
  });

  it("holds a window open until it has minSamples and windowMs has passed", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minSamples: 10 }));
    limit.observeInflight(20);
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
    window(limit, (at += 100), 1, 10);
    for (let w = 0; w < 10; w++) window(limit, (at += 100), 1, limit.limit);
    expect(limit.limit).toBe(12);
    for (let w = 0; w < 10; w++) window(limit, (at += 100), 100, limit.limit);
    expect(limit.limit).toBe(4);
  });

  it("forgets a no-load latency older than minRttWindowMs, so a service that got slower for good recovers", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20, minRttWindowMs: 1000 }));
    let at = 0;
    window(limit, (at += 100), 5, 20);
    for (let w = 0; w < 5; w++) window(limit, (at += 100), 20, limit.limit);
    expect(limit.minRttMs).toBe(5);
    for (let w = 0; w < 15; w++) window(limit, (at += 100), 20, limit.limit);
    expect(limit.minRttMs).toBe(20);
    const recovered = limit.limit;
    expect(window(limit, (at += 100), 20, limit.limit)).toBeGreaterThan(recovered);
  });

  it("takes the median of the window, so one slow outlier does not cut the limit", () => {
    const limit = new AdaptiveLimit(config({ initialLimit: 20 }));
    limit.observeInflight(20);
    for (let i = 0; i < 19; i++) limit.record(10, 100 + i);
    limit.record(500, 150);
    limit.tick(200);
    expect(limit.sampleRttMs).toBe(10);
  });
});

import { describe, expect, it } from "vitest";
import { DEFAULT_GRADIENT2, Gradient2Limit, type Gradient2Config } from "./gradient.js";

const config = (overrides: Partial<Gradient2Config> = {}): Gradient2Config => ({ ...DEFAULT_GRADIENT2, ...overrides });

/** Feeds `n` calls of `rttMs`, each started with the limit fully used. */
function feed(g: Gradient2Limit, n: number, rttMs: number, dropped = false): void {
  for (let i = 0; i < n; i++) g.sample(rttMs, g.limit, dropped);
}

describe("Gradient2Limit", () => {
  it("starts at initialLimit (20 by default)", () => {
    expect(new Gradient2Limit().limit).toBe(20);
    expect(new Gradient2Limit(config({ initialLimit: 7 })).limit).toBe(7);
  });

  it("grows by headroom × smoothing per healthy call while the limit is used", () => {
    const g = new Gradient2Limit();
    g.sample(10, 20, false);
    expect(g.estimate).toBeCloseTo(20.8, 9);
    feed(g, 9, 10);
    expect(g.estimate).toBeCloseTo(28, 9);
    expect(g.limit).toBe(28);
  });

  it("does not grow when fewer than half the limit were in flight (application-limited)", () => {
    const g = new Gradient2Limit();
    for (let i = 0; i < 50; i++) g.sample(10, 9, false);
    expect(g.estimate).toBe(20);
    // It still learns the service's latency meanwhile.
    expect(g.longRttMs).toBeCloseTo(10, 9);
  });

  it("shrinks when latency rises over rttTolerance × the long-term level", () => {
    const g = new Gradient2Limit();
    feed(g, 10, 10);
    const before = g.estimate;
    // 3× slower: gradient = clamp(1.5 × ~10 / 30) = 0.5
    g.sample(30, g.limit, false);
    expect(g.estimate).toBeLessThan(before);
    expect(g.estimate).toBeCloseTo(before * 0.8 + (before * 0.5 + 4) * 0.2, 1);
    const after = g.estimate;
    feed(g, 20, 30);
    expect(g.estimate).toBeLessThan(after);
  });

  it("tolerates latency up to rttTolerance × the long-term level without shrinking", () => {
    const g = new Gradient2Limit();
    feed(g, 10, 10);
    const before = g.estimate;
    g.sample(14, g.limit, false); // 1.5 × 10 / 14 > 1 → gradient 1
    expect(g.estimate).toBeGreaterThan(before);
  });

  it("shrinks by 0.9 × limit + 0.8 per drop (a timeout or a classified failure)", () => {
    const g = new Gradient2Limit(config({ initialLimit: 100 }));
    g.sample(1, 100, true);
    expect(g.estimate).toBeCloseTo(100 * 0.9 + 0.8, 9);
    feed(g, 30, 1, true);
    expect(g.limit).toBeLessThan(20);
  });

  it("keeps a drop's latency out of the long-term average", () => {
    const g = new Gradient2Limit();
    feed(g, 10, 10);
    g.sample(5_000, g.limit, true);
    expect(g.longRttMs).toBeCloseTo(10, 9);
    expect(g.lastRttMs).toBe(10);
  });

  it("under sustained overload settles near 2 × headroom, never below minLimit", () => {
    const g = new Gradient2Limit(config({ initialLimit: 200 }));
    feed(g, 500, 1, true);
    expect(g.limit).toBe(8); // the fixed point of L = 0.9 L + 0.8
    const floored = new Gradient2Limit(config({ initialLimit: 200, minLimit: 30 }));
    feed(floored, 500, 1, true);
    expect(floored.limit).toBe(30);
  });

  it("never exceeds maxLimit", () => {
    const g = new Gradient2Limit(config({ maxLimit: 25 }));
    feed(g, 100, 10);
    expect(g.limit).toBe(25);
  });

  it("recovers after load passes: the long-term level decays toward the new, lower latency", () => {
    const g = new Gradient2Limit(config({ initialLimit: 50 }));
    feed(g, 300, 100); // a long slow period: long-term RTT ≈ 100 ms
    const slowLong = g.longRttMs;
    feed(g, 50, 10); // back to 10 ms
    expect(g.longRttMs).toBeLessThan(slowLong / 2);
    const limit = g.limit;
    feed(g, 20, 10);
    expect(g.limit).toBeGreaterThan(limit);
  });

  it("averages the first 10 samples plainly, then uses an EWMA over longWindowSamples", () => {
    const g = new Gradient2Limit(config({ longWindowSamples: 9 })); // factor 0.2
    for (let i = 1; i <= 10; i++) g.sample(i, 0, false);
    expect(g.longRttMs).toBeCloseTo(5.5, 9);
    g.sample(10.5, 0, false);
    expect(g.longRttMs).toBeCloseTo(5.5 + (10.5 - 5.5) * 0.2, 9);
  });

  it("treats a zero RTT (a call faster than the clock) as no queueing", () => {
    const g = new Gradient2Limit();
    feed(g, 5, 0);
    expect(g.estimate).toBeCloseTo(24, 9);
    expect(Number.isFinite(g.longRttMs)).toBe(true);
  });

  it("clamps initialLimit into [minLimit, maxLimit]", () => {
    expect(new Gradient2Limit(config({ initialLimit: 5, minLimit: 10 })).limit).toBe(10);
    expect(new Gradient2Limit(config({ initialLimit: 50, maxLimit: 30 })).limit).toBe(30);
  });
});

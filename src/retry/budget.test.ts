import { describe, expect, it } from "vitest";
import { backoffMs } from "./backoff.js";
import { RetryBudget } from "./budget.js";
import { parseRetryAfter } from "./retry-after.js";

describe("RetryBudget", () => {
  it("allows minPerSecond × ttl retries with no traffic, then refuses", () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 });
    let allowed = 0;
    while (budget.tryWithdraw(0)) allowed++;
    expect(allowed).toBe(100);
  });

  it("earns ratio of a retry per call", () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, ttlMs: 10_000 });
    for (let i = 0; i < 50; i++) budget.deposit(0);
    let allowed = 0;
    while (budget.tryWithdraw(0)) allowed++;
    expect(allowed).toBe(10);
  });

  it("forgets deposits and withdrawals after ttlMs", () => {
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 });
    for (let i = 0; i < 5; i++) budget.deposit(0);
    expect(budget.balance(9_000)).toBe(5);
    expect(budget.balance(10_500)).toBe(0);
  });

  it("keeps retries of a total outage near ratio × calls + the floor", () => {
    // 100 calls/s for 60 s, every attempt failing; each call retries while the budget allows.
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 });
    let calls = 0;
    let retries = 0;
    for (let ms = 0; ms < 60_000; ms += 10) {
      budget.deposit(ms);
      calls++;
      for (let attempt = 1; attempt < 3 && budget.tryWithdraw(ms); attempt++) retries++;
    }
    const bound = 0.2 * calls + 10 * 60 + 100;
    expect(retries).toBeLessThanOrEqual(bound);
    expect(retries).toBeGreaterThan(0.2 * calls * 0.9);
    // Naive retries would have added 2 × calls.
    expect(retries / calls).toBeLessThan(0.4);
  });
});

describe("backoffMs (full jitter)", () => {
  it("draws uniformly below a cap that doubles each retry up to maxMs", () => {
    const config = { baseMs: 25, maxMs: 1000 };
    expect(backoffMs(config, 1, 0.999999)).toBeCloseTo(25, 3);
    expect(backoffMs(config, 2, 0.5)).toBe(25);
    expect(backoffMs(config, 3, 0.999999)).toBeCloseTo(100, 3);
    expect(backoffMs(config, 20, 0.999999)).toBeCloseTo(1000, 2);
    expect(backoffMs(config, 5, 0)).toBe(0);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);
  it("reads delay-seconds and HTTP dates", () => {
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).toBe(0);
  });
  it("ignores what it cannot read", () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-1", now)).toBeUndefined();
    expect(parseRetryAfter("1.", now)).toBeUndefined();
    expect(parseRetryAfter(".5", now)).toBeUndefined();
  });
  it("reads a fraction of a second to the millisecond, never shorter (a gRPC pushback)", () => {
    expect(parseRetryAfter("1.5", now)).toBe(1500);
    expect(parseRetryAfter("0.25", now)).toBe(250);
    for (const ms of [1, 7, 50, 999, 29_999]) expect(parseRetryAfter(String(ms / 1000), now)).toBe(ms);
    expect(parseRetryAfter("0.0005", now)).toBe(1);
  });
});

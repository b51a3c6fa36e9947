import { describe, expect, it } from "vitest";
import { TokenBucket } from "./token-bucket.js";

describe("TokenBucket", () => {
  it("starts full and allows a burst of `burst` calls at once", () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 3 }, 0);
    expect([bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.tokens(0)).toBe(0);
  });

  it("refills perSecond tokens per second from elapsed time, with no timer", () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 5 }, 1_000);
    for (let i = 0; i < 5; i++) bucket.tryTake(1_000);
    expect(bucket.tokens(1_050)).toBeCloseTo(0.5, 9);
    expect(bucket.tryTake(1_050)).toBe(false);
    expect(bucket.tokens(1_100)).toBeCloseTo(1, 9);
    expect(bucket.tryTake(1_100)).toBe(true);
    expect(bucket.tokens(1_350)).toBeCloseTo(2.5, 9);
  });

  it("never holds more than burst tokens", () => {
    const bucket = new TokenBucket({ perSecond: 100, burst: 2 }, 0);
    bucket.tryTake(0);
    expect(bucket.tokens(60_000)).toBe(2);
  });

  it("says how long until the next token", () => {
    const bucket = new TokenBucket({ perSecond: 4, burst: 1 }, 0);
    expect(bucket.waitMs(0)).toBe(0);
    bucket.tryTake(0);
    expect(bucket.waitMs(0)).toBeCloseTo(250, 9);
    expect(bucket.waitMs(100)).toBeCloseTo(150, 9);
  });

  it("handles a fractional rate: 0.5 per second is one call every 2 s", () => {
    const bucket = new TokenBucket({ perSecond: 0.5, burst: 1 }, 0);
    expect(bucket.tryTake(0)).toBe(true);
    expect(bucket.waitMs(0)).toBeCloseTo(2_000, 9);
    expect(bucket.tryTake(1_999)).toBe(false);
    expect(bucket.tryTake(2_000)).toBe(true);
  });

  it("reservations go into debt and queue their callers one token apart", () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 1 }, 0);
    expect(bucket.reserve(0)).toBe(0);
    expect(bucket.reserve(0)).toBeCloseTo(100, 9);
    expect(bucket.reserve(0)).toBeCloseTo(200, 9);
    expect(bucket.tokens(0)).toBeCloseTo(-2, 9);
    // A newcomer does not jump the line: its token comes after the reserved ones.
    expect(bucket.tryTake(150)).toBe(false);
    expect(bucket.waitMs(150)).toBeCloseTo(150, 9);
    expect(bucket.tokens(300)).toBeCloseTo(1, 9);
  });

  it("a token given back is available again, capped at burst", () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 1 }, 0);
    bucket.reserve(0);
    bucket.reserve(0);
    expect(bucket.tokens(0)).toBeCloseTo(-1, 9);
    bucket.giveBack(0);
    expect(bucket.tokens(0)).toBeCloseTo(0, 9);
    bucket.giveBack(0);
    bucket.giveBack(0);
    expect(bucket.tokens(0)).toBe(1);
  });

  it("adds nothing when the clock does not advance or steps back", () => {
    const bucket = new TokenBucket({ perSecond: 1_000, burst: 1 }, 100);
    bucket.tryTake(100);
    expect(bucket.tokens(50)).toBe(0);
    expect(bucket.tokens(100)).toBe(0);
    expect(bucket.tokens(100.5)).toBeCloseTo(0.5, 9);
  });
});

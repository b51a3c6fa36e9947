import { describe, expect, it } from "vitest";
import { ejectionMs, isSuccessRateOutlier, mayEject, raisedMultiplier, successRateThreshold } from "./ejection.js";

describe("ejection time", () => {
  it("is base × multiplier, capped at the maximum", () => {
    expect(ejectionMs(1, 30_000, 300_000)).toBe(30_000);
    expect(ejectionMs(4, 30_000, 300_000)).toBe(120_000);
    expect(ejectionMs(10, 30_000, 300_000)).toBe(300_000);
    expect(ejectionMs(11, 30_000, 300_000)).toBe(300_000);
  });

  it("raises the multiplier by one until it reaches the cap, then holds it", () => {
    let multiplier = 0;
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) seen.push((multiplier = raisedMultiplier(multiplier, 30_000, 300_000)));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10]);
    // A maximum that is not a multiple of the base: the first multiplier that reaches it.
    expect(raisedMultiplier(3, 30_000, 100_000)).toBe(4);
    expect(raisedMultiplier(4, 30_000, 100_000)).toBe(4);
    // max = base: every ejection lasts the base time.
    expect(raisedMultiplier(1, 30_000, 30_000)).toBe(1);
  });
});

describe("the ejection bound", () => {
  it("always allows the first ejection, however small the set", () => {
    expect(mayEject(0, 1, 10)).toBe(true);
    expect(mayEject(0, 3, 10)).toBe(true);
    expect(mayEject(1, 3, 10)).toBe(false);
  });

  it("keeps the share ejected within the percentage once one is out", () => {
    expect(mayEject(1, 20, 10)).toBe(true); // 2 of 20 = 10 %
    expect(mayEject(2, 20, 10)).toBe(false); // 3 of 20 = 15 %
    expect(mayEject(9, 100, 10)).toBe(true);
    expect(mayEject(10, 100, 10)).toBe(false);
    expect(mayEject(2, 4, 100)).toBe(true);
    expect(mayEject(4, 4, 100)).toBe(false);
  });

  it("ejects nothing at 0 % or in an empty set", () => {
    expect(mayEject(0, 10, 0)).toBe(false);
    expect(mayEject(0, 0, 10)).toBe(false);
  });
});

describe("the success-rate threshold", () => {
  it("is mean − factor × population stdev (Envoy's worked example)", () => {
    const { mean, threshold } = successRateThreshold([50, 100, 100, 100, 100], 5, 1.9);
    expect(mean).toBe(90);
    expect(threshold).toBeCloseTo(52, 10);
  });

  it("reads only the first `count` rates", () => {
    expect(successRateThreshold([1, 1, 0, 0], 2, 1.9)).toEqual({ mean: 1, threshold: 1 });
  });

  it("finds the replica failing half its calls among nine healthy ones", () => {
    const rates = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5];
    const { mean, threshold } = successRateThreshold(rates, rates.length, 1.9);
    expect(mean).toBeCloseTo(0.95, 12);
    expect(threshold).toBeCloseTo(0.665, 12);
    expect(rates.filter((r) => isSuccessRateOutlier(r, threshold))).toEqual([0.5]);
  });

  it("finds no outlier when every rate is equal, rounding notwithstanding", () => {
    const rates = Array<number>(7).fill(0.97);
    const { threshold } = successRateThreshold(rates, rates.length, 1.9);
    expect(rates.some((r) => isSuccessRateOutlier(r, threshold))).toBe(false);
  });
});

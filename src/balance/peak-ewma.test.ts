import { describe, expect, it } from "vitest";
import { decayWeight, observePeakEwma, peakEwmaCost, readPeakEwma } from "./peak-ewma.js";

describe("peak EWMA", () => {
  it("takes the first sample and jumps to a higher one at once (the peak)", () => {
    const first = observePeakEwma(Number.NaN, 0, 20, 0, 10_000);
    expect(first).toBe(20);
    expect(observePeakEwma(first, 0, 500, 1, 10_000)).toBe(500);
  });

  it("moves toward a lower sample by the time since the last one", () => {
    const soon = observePeakEwma(100, 0, 10, 100, 10_000);
    const later = observePeakEwma(100, 0, 10, 10_000, 10_000);
    expect(soon).toBeGreaterThan(later);
    // After one time constant, e^-1 of the old estimate remains.
    expect(later).toBeCloseTo(100 * Math.exp(-1) + 10 * (1 - Math.exp(-1)), 6);
  });

  it("reads an idle estimate as decaying toward the client-wide baseline", () => {
    expect(readPeakEwma(1000, 0, 0, 10_000, 10)).toBe(1000);
    const after = readPeakEwma(1000, 0, 50_000, 10_000, 10);
    expect(after).toBeGreaterThan(10);
    expect(after).toBeLessThan(20);
    expect(readPeakEwma(Number.NaN, 0, 0, 10_000, 42)).toBe(42);
  });

  it("costs latency × (in-flight + 1) / weight", () => {
    expect(peakEwmaCost(10, 0, 1)).toBe(10);
    expect(peakEwmaCost(10, 3, 1)).toBe(40);
    expect(peakEwmaCost(10, 3, 2)).toBe(20);
    expect(decayWeight(0, 10)).toBe(1);
  });
});

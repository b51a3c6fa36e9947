import { describe, expect, it } from "vitest";
import { Endpoint } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import {
  NOT_RAMPING,
  normalizeSlowStartOptions,
  SLOW_START_DEFAULTS,
  slowStartFactor,
  slowStartWeigher,
} from "./slow-start.js";

describe("slowStartFactor", () => {
  it("starts at the minimum share, ramps linearly and is 1 from the end of the window", () => {
    const at = (ms: number): number => slowStartFactor(ms, 0, 30_000);
    expect(at(0)).toBe(0.1);
    expect(at(1500)).toBe(0.1); // 5 % is below the 10 % floor
    expect(at(6000)).toBeCloseTo(0.2, 12);
    expect(at(15_000)).toBe(0.5);
    expect(at(29_999)).toBeCloseTo(1, 4);
    expect(at(30_000)).toBe(1);
    expect(at(3_000_000)).toBe(1);
  });

  it("follows Envoy's curve for other aggressions: (elapsed / window) ^ (1 / aggression)", () => {
    expect(slowStartFactor(7500, 0, 30_000, 0.1, 2)).toBeCloseTo(0.5, 12); // √0.25
    expect(slowStartFactor(15_000, 0, 30_000, 0.1, 0.5)).toBeCloseTo(0.25, 12); // 0.5²
  });

  it("honours the minimum share given, and never ramps an endpoint that is not ramping", () => {
    expect(slowStartFactor(0, 0, 30_000, 0.5)).toBe(0.5);
    expect(slowStartFactor(20_000, 0, 30_000, 0.5)).toBeCloseTo(2 / 3, 12);
    expect(slowStartFactor(0, NOT_RAMPING, 30_000)).toBe(1);
    expect(slowStartFactor(-5, 0, 30_000)).toBe(0.1); // a clock read before readySince
  });
});

describe("slowStartWeigher", () => {
  it("is weight × ramp share, or the weight alone when slow start is off", () => {
    const e = new Endpoint({ url: "http://a:1", weight: 4 }, 0);
    e.readySince = 10_000;
    expect(slowStartWeigher(SLOW_START_DEFAULTS)(e, 25_000)).toBe(2);
    expect(slowStartWeigher(SLOW_START_DEFAULTS)(e, 40_000)).toBe(4);
    expect(slowStartWeigher(false)(e, 10_000)).toBe(4);
  });
});

describe("normalizeSlowStartOptions", () => {
  it("is on with Envoy-like defaults unless false", () => {
    expect(normalizeSlowStartOptions(undefined)).toEqual({ windowMs: 30_000, minShare: 0.1, aggression: 1 });
    expect(normalizeSlowStartOptions({ windowMs: 60_000 })).toEqual({ windowMs: 60_000, minShare: 0.1, aggression: 1 });
    expect(normalizeSlowStartOptions(false)).toBe(false);
    expect(Object.isFrozen(normalizeSlowStartOptions({ minShare: 0.2 }))).toBe(true);
  });

  it("names the option, the value and what is allowed", () => {
    expect(() => normalizeSlowStartOptions({ windowMs: 0 })).toThrow(
      "invalid option slowStart.windowMs: got 0; expected a positive number of milliseconds",
    );
    expect(() => normalizeSlowStartOptions({ minShare: 0 })).toThrow(
      /slowStart\.minShare: got 0; expected a share greater than 0 and at most 1/,
    );
    expect(() => normalizeSlowStartOptions({ minShare: 1.5 })).toThrow(/slowStart\.minShare/);
    expect(() => normalizeSlowStartOptions({ aggression: -1 })).toThrow(/slowStart\.aggression/);
    expect(() => normalizeSlowStartOptions(true)).toThrow(/invalid option slowStart: got true/);
    expect(() => normalizeSlowStartOptions({ window: 1000 }, "defaults.slowStart")).toThrow(
      "unknown option defaults.slowStart.window (did you mean defaults.slowStart.windowMs?)",
    );
    expect(() => normalizeSlowStartOptions({ windowMs: "30s" })).toThrow(InvalidOptionsError);
  });
});

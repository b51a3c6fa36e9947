import { describe, expect, it } from "vitest";
import { ErrorCodes, InvalidOptionsError, isWeftError } from "../core/errors.js";
import { BREAKER_DEFAULTS, normalizeBreakerOptions } from "./breaker-options.js";

function invalid(value: unknown, option?: string): InvalidOptionsError {
  try {
    normalizeBreakerOptions(value, option);
  } catch (error) {
    expect(isWeftError(error)).toBe(true);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).code).toBe(ErrorCodes.INVALID_OPTIONS);
    return error as InvalidOptionsError;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
}

describe("normalizeBreakerOptions", () => {
  it("gives the documented defaults for undefined and for an empty object", () => {
    const expected = {
      errorThresholdPercentage: 50,
      resetTimeoutMs: 5000,
      volumeThreshold: 10,
      rollingWindowMs: 10_000,
      rollingBuckets: 10,
      halfOpenProbes: 1,
      maxEndpoints: 10_000,
    };
    expect(normalizeBreakerOptions(undefined)).toEqual(expected);
    expect(normalizeBreakerOptions({})).toEqual(expected);
    expect(BREAKER_DEFAULTS).toEqual(expected);
  });

  it("turns the breaker off with false", () => {
    expect(normalizeBreakerOptions(false)).toBe(false);
  });

  it("merges given fields over the defaults into a frozen config, without touching the caller's object", () => {
    const options = Object.freeze({ resetTimeoutMs: 10_000, halfOpenProbes: 3, volumeThreshold: undefined });
    const config = normalizeBreakerOptions(options);
    expect(config).toEqual({ ...BREAKER_DEFAULTS, resetTimeoutMs: 10_000, halfOpenProbes: 3 });
    expect(Object.isFrozen(config)).toBe(true);
    expect(options).toEqual({ resetTimeoutMs: 10_000, halfOpenProbes: 3, volumeThreshold: undefined });
  });

  it("names the option, the value and what is allowed", () => {
    const error = invalid({ resetTimeoutMs: -5 });
    expect(error.option).toBe("breaker.resetTimeoutMs");
    expect(error.message).toBe(
      "invalid option breaker.resetTimeoutMs: got -5; expected a positive number of milliseconds",
    );
  });

  it("rejects an unknown key and suggests the nearest one", () => {
    const error = invalid({ resetTimeout: 5000 });
    expect(error.option).toBe("breaker.resetTimeout");
    expect(error.message).toMatch(
      /^unknown option breaker.resetTimeout \(did you mean breaker.resetTimeoutMs\?\); allowed: errorThresholdPercentage, resetTimeoutMs/,
    );
    expect(invalid({ timeout: 1000 }).message).toMatch(/^unknown option breaker.timeout; allowed:/);
  });

  it("uses the option path it is given (mesh defaults)", () => {
    expect(invalid({ volumeThreshold: 1.5 }, "defaults.breaker").option).toBe("defaults.breaker.volumeThreshold");
  });

  it("rejects what is not an object or false", () => {
    expect(invalid(true).message).toMatch(
      /^invalid option breaker: got true; expected \{ errorThresholdPercentage\?, .* \} or false \(off\)$/,
    );
    expect(invalid(null).option).toBe("breaker");
    expect(invalid([]).option).toBe("breaker");
  });

  it.each([
    ["errorThresholdPercentage", -1],
    ["errorThresholdPercentage", 100],
    ["errorThresholdPercentage", "50"],
    ["errorThresholdPercentage", Number.NaN],
    ["resetTimeoutMs", 0],
    ["resetTimeoutMs", Infinity],
    ["volumeThreshold", -1],
    ["volumeThreshold", 2.5],
    ["rollingWindowMs", 0],
    ["rollingBuckets", 0],
    ["rollingBuckets", 1.5],
    ["halfOpenProbes", 0],
    ["maxEndpoints", 0],
    ["maxEndpoints", null],
  ])("rejects %s = %s", (key, value) => {
    const error = invalid({ [key]: value });
    expect(error.option).toBe(`breaker.${key}`);
    expect(error.message).toMatch(new RegExp(`^invalid option breaker\\.${key}: got .*; expected `));
  });

  it("accepts the edges: a threshold of 0, a volume of 0, one bucket", () => {
    expect(
      normalizeBreakerOptions({ errorThresholdPercentage: 0, volumeThreshold: 0, rollingBuckets: 1 }),
    ).toMatchObject({
      errorThresholdPercentage: 0,
      volumeThreshold: 0,
      rollingBuckets: 1,
    });
  });

  it("refuses buckets shorter than a millisecond", () => {
    expect(invalid({ rollingWindowMs: 10, rollingBuckets: 20 }).message).toMatch(
      /at most breaker.rollingWindowMs \(10\) buckets/,
    );
  });
});

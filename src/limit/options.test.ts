import { describe, expect, it } from "vitest";
import { ErrorCodes, InvalidOptionsError } from "../core/errors.js";
import { normalizeConcurrencyOptions, normalizeRateLimitOptions } from "./options.js";

function failure(run: () => unknown): InvalidOptionsError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).code).toBe(ErrorCodes.INVALID_OPTIONS);
    return error as InvalidOptionsError;
  }
  throw new Error("expected an InvalidOptionsError");
}

describe("normalizeConcurrencyOptions", () => {
  it("false or absent turns the limit off", () => {
    expect(normalizeConcurrencyOptions(undefined)).toBe(false);
    expect(normalizeConcurrencyOptions(false)).toBe(false);
  });

  it("{} is the bulkhead with the defaults { limit: 256, queue: 512 }", () => {
    expect(normalizeConcurrencyOptions({})).toEqual({ adaptive: false, limit: 256, queue: 512 });
    expect(normalizeConcurrencyOptions({ limit: 8, queue: 0 })).toEqual({ adaptive: false, limit: 8, queue: 0 });
  });

  it("{ adaptive: true } is Gradient2 with its defaults and the same queue", () => {
    expect(normalizeConcurrencyOptions({ adaptive: true })).toEqual({
      adaptive: true,
      queue: 512,
      initialLimit: 20,
      minLimit: 1,
      maxLimit: 1000,
      smoothing: 0.2,
      rttTolerance: 1.5,
      longWindowSamples: 600,
      headroom: 4,
    });
  });

  it("returns a frozen config and leaves the caller's object alone", () => {
    const options = { limit: 4 };
    const config = normalizeConcurrencyOptions(options);
    expect(Object.isFrozen(config)).toBe(true);
    expect(options).toEqual({ limit: 4 });
  });

  it("names the option, the value and what is allowed", () => {
    expect(failure(() => normalizeConcurrencyOptions({ limit: -1 })).message).toBe(
      "invalid option concurrency.limit: got -1; expected a positive integer",
    );
    expect(failure(() => normalizeConcurrencyOptions({ queue: 1.5 })).message).toBe(
      "invalid option concurrency.queue: got 1.5; expected a non-negative integer",
    );
    expect(failure(() => normalizeConcurrencyOptions(true)).option).toBe("concurrency");
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: "yes" })).option).toBe("concurrency.adaptive");
    expect(failure(() => normalizeConcurrencyOptions({ limit: 0 }, "defaults.concurrency")).message).toMatch(
      /^invalid option defaults\.concurrency\.limit: got 0;/,
    );
  });

  it("rejects unknown keys, with the nearest known name", () => {
    const error = failure(() => normalizeConcurrencyOptions({ limt: 10 }));
    expect(error.option).toBe("concurrency.limt");
    expect(error.message).toMatch(/did you mean concurrency\.limit\?/);
  });

  it("says when an option belongs to the other mode", () => {
    expect(failure(() => normalizeConcurrencyOptions({ maxLimit: 100 })).message).toMatch(
      /adaptive limit only; add adaptive: true/,
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, limit: 100 })).message).toMatch(
      /use concurrency\.initialLimit/,
    );
  });

  it("checks the adaptive parameters and their order", () => {
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, minLimit: 50, maxLimit: 10 })).option).toBe(
      "concurrency.maxLimit",
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, initialLimit: 5, minLimit: 10 })).option).toBe(
      "concurrency.initialLimit",
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, smoothing: 0 })).option).toBe(
      "concurrency.smoothing",
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, rttTolerance: 0.9 })).option).toBe(
      "concurrency.rttTolerance",
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, headroom: -1 })).option).toBe(
      "concurrency.headroom",
    );
    expect(failure(() => normalizeConcurrencyOptions({ adaptive: true, longWindowSamples: 0 })).option).toBe(
      "concurrency.longWindowSamples",
    );
  });

  it("moves the default initial limit into [minLimit, maxLimit]", () => {
    expect(normalizeConcurrencyOptions({ adaptive: true, maxLimit: 10 })).toMatchObject({
      initialLimit: 10,
      maxLimit: 10,
    });
    expect(normalizeConcurrencyOptions({ adaptive: true, minLimit: 50 })).toMatchObject({
      initialLimit: 50,
      minLimit: 50,
    });
    expect(normalizeConcurrencyOptions({ adaptive: true, minLimit: 2000 })).toMatchObject({
      minLimit: 2000,
      maxLimit: 2000,
    });
  });
});

describe("normalizeRateLimitOptions", () => {
  it("false or absent turns the limit off", () => {
    expect(normalizeRateLimitOptions(undefined)).toBe(false);
    expect(normalizeRateLimitOptions(false)).toBe(false);
  });

  it("defaults burst to one second's worth and queue to burst", () => {
    expect(normalizeRateLimitOptions({ perSecond: 100 })).toEqual({ perSecond: 100, burst: 100, queue: 100 });
    expect(normalizeRateLimitOptions({ perSecond: 0.5 })).toEqual({ perSecond: 0.5, burst: 1, queue: 1 });
    expect(normalizeRateLimitOptions({ perSecond: 2.5, burst: 5, queue: 0 })).toEqual({
      perSecond: 2.5,
      burst: 5,
      queue: 0,
    });
  });

  it("requires perSecond and checks each value", () => {
    expect(failure(() => normalizeRateLimitOptions({})).message).toBe(
      "invalid option rateLimit.perSecond: got undefined; expected a positive number of calls per second",
    );
    expect(failure(() => normalizeRateLimitOptions({ perSecond: Infinity })).option).toBe("rateLimit.perSecond");
    expect(failure(() => normalizeRateLimitOptions({ perSecond: 10, burst: 0.5 })).option).toBe("rateLimit.burst");
    expect(failure(() => normalizeRateLimitOptions({ perSecond: 10, queue: -1 })).option).toBe("rateLimit.queue");
    expect(failure(() => normalizeRateLimitOptions({ perSecond: 10, brust: 5 })).message).toMatch(
      /did you mean rateLimit\.burst\?/,
    );
    expect(failure(() => normalizeRateLimitOptions(10)).option).toBe("rateLimit");
  });
});

import { describe, expect, it } from "vitest";
import { InvalidOptionsError } from "../core/errors.js";
import { normalizeOutlierOptions, OUTLIER_DEFAULTS } from "./outlier-options.js";

describe("normalizeOutlierOptions", () => {
  it("is on with Envoy's defaults unless false", () => {
    expect(normalizeOutlierOptions(undefined)).toEqual({
      consecutiveFailures: 5,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
      successRateMinimumHosts: 5,
      successRateRequestVolume: 100,
      successRateStdevFactor: 1.9,
    });
    expect(normalizeOutlierOptions({})).toEqual(OUTLIER_DEFAULTS);
    expect(normalizeOutlierOptions(false)).toBe(false);
  });

  it("merges what is given over the defaults into a frozen copy", () => {
    const given = { consecutiveFailures: 3, successRateStdevFactor: false as const };
    const config = normalizeOutlierOptions(given);
    expect(config).toEqual({ ...OUTLIER_DEFAULTS, consecutiveFailures: 3, successRateStdevFactor: false });
    expect(Object.isFrozen(config)).toBe(true);
    expect(given).toEqual({ consecutiveFailures: 3, successRateStdevFactor: false }); // untouched
  });

  it("names the option, the value and what is allowed", () => {
    const cases: [unknown, string][] = [
      [
        { consecutiveFailures: 0 },
        "invalid option outlier.consecutiveFailures: got 0; expected an integer ≥ 1 (consecutive failures before an ejection) or false (off)",
      ],
      [{ consecutiveFailures: 2.5 }, "outlier.consecutiveFailures: got 2.5"],
      [{ intervalMs: -1 }, "invalid option outlier.intervalMs: got -1; expected a positive number of milliseconds"],
      [{ baseEjectionMs: Infinity }, "outlier.baseEjectionMs: got Infinity"],
      [
        { maxEjectionMs: 10_000 },
        "invalid option outlier.maxEjectionMs: got 10000; expected a number of milliseconds ≥ outlier.baseEjectionMs (30000)",
      ],
      [{ maxEjectionPercent: 101 }, "outlier.maxEjectionPercent: got 101; expected a percentage from 0 to 100"],
      [{ successRateMinimumHosts: 0 }, "outlier.successRateMinimumHosts: got 0; expected an integer ≥ 1"],
      [{ successRateRequestVolume: "100" }, 'outlier.successRateRequestVolume: got "100"'],
      [
        { successRateStdevFactor: 0 },
        "outlier.successRateStdevFactor: got 0; expected a positive number of standard deviations (1.9, not Envoy's 1900) or false (off)",
      ],
      [true, "invalid option outlier: got true; expected { consecutiveFailures?, intervalMs?"],
      [{ consecutive5xx: 5 }, "unknown option outlier.consecutive5xx"],
      [{ intervalMS: 5 }, "unknown option outlier.intervalMS (did you mean outlier.intervalMs?)"],
    ];
    for (const [value, message] of cases) {
      expect(() => normalizeOutlierOptions(value), message).toThrow(message);
    }
  });

  it("names the option by the path given, as a mesh's defaults do", () => {
    try {
      normalizeOutlierOptions({ intervalMs: 0 }, "defaults.outlier");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as InvalidOptionsError).option).toBe("defaults.outlier.intervalMs");
      expect((error as InvalidOptionsError).code).toBe("WEFT_ERR_INVALID_OPTIONS");
    }
  });
});

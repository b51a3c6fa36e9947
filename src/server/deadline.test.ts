import { describe, expect, it } from "vitest";
import { parseGrpcTimeout, readDeadline } from "./deadline.js";

describe("readDeadline", () => {
  const H = "x-weft-timeout-ms";

  it("reads weft's header as whole milliseconds", () => {
    expect(readDeadline({ [H]: "250" }, H, true)).toEqual({ kind: "ms", ms: 250, header: H });
    expect(readDeadline({ [H]: " 0 " }, H, true)).toEqual({ kind: "ms", ms: 0, header: H });
  });

  it("says none when neither header is there", () => {
    expect(readDeadline({}, H, true)).toEqual({ kind: "none" });
  });

  it("refuses an unreadable header, naming it and what is allowed", () => {
    for (const bad of ["-5", "1.5", "soon", "", "1e3"]) {
      const reading = readDeadline({ [H]: bad }, H, true);
      expect(reading.kind).toBe("malformed");
      expect(reading.kind === "malformed" && reading.message).toMatch(
        /x-weft-timeout-ms must be a whole number of milliseconds/,
      );
    }
    expect(readDeadline({ [H]: ["100", "200"] }, H, true).kind).toBe("malformed");
  });

  it("reads grpc-timeout when weft's header is absent, and only when asked", () => {
    expect(readDeadline({ "grpc-timeout": "100m" }, H, true)).toEqual({ kind: "ms", ms: 100, header: "grpc-timeout" });
    expect(readDeadline({ "grpc-timeout": "100m" }, H, false)).toEqual({ kind: "none" });
    expect(readDeadline({ [H]: "50", "grpc-timeout": "100m" }, H, true)).toEqual({ kind: "ms", ms: 50, header: H });
    const bad = readDeadline({ "grpc-timeout": "100ms" }, H, true);
    expect(bad.kind === "malformed" && bad.message).toMatch(/grpc-timeout must be 1–8 digits and a unit/);
  });
});

describe("parseGrpcTimeout", () => {
  it("knows every unit of the gRPC spec", () => {
    expect(parseGrpcTimeout("1H")).toBe(3_600_000);
    expect(parseGrpcTimeout("2M")).toBe(120_000);
    expect(parseGrpcTimeout("3S")).toBe(3000);
    expect(parseGrpcTimeout("250m")).toBe(250);
    expect(parseGrpcTimeout("1500u")).toBeCloseTo(1.5);
    expect(parseGrpcTimeout("2000000n")).toBeCloseTo(2);
  });

  it("rejects what the spec does not allow: no unit, 9 digits, a sign, a fraction", () => {
    for (const bad of ["100", "123456789m", "-1m", "1.5S", "m", "10 m"]) expect(parseGrpcTimeout(bad)).toBeUndefined();
  });
});

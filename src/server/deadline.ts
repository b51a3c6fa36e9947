/**
 * Reading the caller's deadline from an inbound request: weft's own header (the remaining time in
 * whole milliseconds, sent by every weft client's attempt layer) or gRPC's `grpc-timeout`
 * (`"100m"`: a positive integer of at most 8 digits and a unit — Hours, Minutes, Seconds,
 * milliseconds, microseconds, nanoseconds; the gRPC over HTTP/2 spec).
 *
 * A header that is present but unreadable is the caller's bug, not a missing deadline: it is
 * refused with 400 and a body that names the header and what is allowed, rather than served with
 * no deadline at all (which would quietly let work outlive every caller).
 */
import type { IncomingHttpHeaders } from "node:http";

export type DeadlineReading =
  /** No deadline header. */
  | { readonly kind: "none" }
  /** The caller's time left, ms (0 or less: already expired). */
  | { readonly kind: "ms"; readonly ms: number; readonly header: string }
  | { readonly kind: "malformed"; readonly header: string; readonly message: string };

const NONE: DeadlineReading = Object.freeze({ kind: "none" });

/** Multipliers from a `grpc-timeout` unit to milliseconds. */
const GRPC_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const WHOLE_MS = /^\d{1,15}$/;

/**
 * The deadline the caller sent: `header` (weft's, in ms) first, else `grpc-timeout` when `grpc`.
 * @example readDeadline({ "x-weft-timeout-ms": "250" }, "x-weft-timeout-ms", true) // { kind: "ms", ms: 250, ... }
 */
export function readDeadline(headers: IncomingHttpHeaders, header: string, grpc: boolean): DeadlineReading {
  const weft = headers[header];
  if (weft !== undefined) {
    const text = (Array.isArray(weft) ? weft[0] : weft)?.trim() ?? "";
    if (Array.isArray(weft) && weft.length > 1 && weft.some((v) => v.trim() !== text)) {
      return { kind: "malformed", header, message: `${header} was sent ${weft.length} times with different values` };
    }
    if (!WHOLE_MS.test(text))
      return {
        kind: "malformed",
        header,
        message: `${header} must be a whole number of milliseconds, got ${JSON.stringify(clip(text))}`,
      };
    return { kind: "ms", ms: Number(text), header };
  }
  if (!grpc) return NONE;
  const value = headers["grpc-timeout"];
  if (value === undefined) return NONE;
  const text = (Array.isArray(value) ? value[0] : value)?.trim() ?? "";
  const ms = parseGrpcTimeout(text);
  if (ms === undefined) {
    return {
      kind: "malformed",
      header: "grpc-timeout",
      message: `grpc-timeout must be 1–8 digits and a unit (H, M, S, m, u, n), got ${JSON.stringify(clip(text))}`,
    };
  }
  return { kind: "ms", ms, header: "grpc-timeout" };
}

/** `grpc-timeout` in ms (fractional for u and n), or undefined when it does not follow the spec. */
export function parseGrpcTimeout(text: string): number | undefined {
  const match = GRPC_TIMEOUT.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * (GRPC_UNITS[match[2] as string] as number);
}

/** Keeps a caller's bad value short in a response body or a log line. */
function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

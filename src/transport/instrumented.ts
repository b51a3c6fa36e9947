/**
 * Whether an HTTP instrumentation is hooked into a transport, so it will inject `traceparent`
 * itself. OpenTelemetry's undici instrumentation (which also covers global fetch) subscribes to
 * undici's `undici:request:create` diagnostics channel and appends its header to every request;
 * its http instrumentation wraps `http.request` (shimmer marks a wrapped function `__wrapped`).
 * weft's attempt layer reads this so a request never carries two `traceparent` headers.
 */
import diagnostics from "node:diagnostics_channel";
import http from "node:http";
import https from "node:https";

const undiciCreate = diagnostics.channel("undici:request:create");

/** True when someone (an instrumentation) listens to undici's request-create channel. */
export function undiciInstrumented(): boolean {
  return undiciCreate.hasSubscribers;
}

/** True when `http.request` or `https.request` is wrapped by an instrumentation. */
export function httpInstrumented(): boolean {
  return isWrapped(http.request) || isWrapped(https.request);
}

function isWrapped(fn: unknown): boolean {
  return typeof fn === "function" && (fn as { __wrapped?: unknown }).__wrapped === true;
}

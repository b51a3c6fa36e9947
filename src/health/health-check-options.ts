/**
 * Options of active health checks: `healthCheck: { path, … }`, off unless set (a check needs a
 * path the service answers, and costs a request per endpoint per interval). The thresholds are
 * the usual Envoy / HAProxy / Kubernetes-probe pair: 3 failed checks take an endpoint out, 2
 * passed checks bring it back (`rise 2 fall 3` is HAProxy's default), so one lost packet does not
 * eject a replica and one lucky answer does not restore a broken one. A 10 s interval and a 1 s
 * timeout are Kubernetes' probe defaults (`periodSeconds`, `timeoutSeconds`).
 */
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

/** What a user passes as `healthCheck: { … }`. */
export interface HealthCheckOptions {
  /** The path to request on every endpoint (required), e.g. `"/healthz"`. */
  readonly path: string;
  /** Time between two checks of one endpoint, ms (jittered ±10 %). Default 10 000. */
  readonly intervalMs?: number;
  /** A check not answered within this counts as failed and is aborted, ms (≤ `intervalMs`). Default 1000. */
  readonly timeoutMs?: number;
  /** Consecutive passed checks that bring an unhealthy endpoint back. Default 2. */
  readonly healthyThreshold?: number;
  /** Consecutive failed checks that take an endpoint out. Default 3. */
  readonly unhealthyThreshold?: number;
  /** The request method. Default `"GET"`. */
  readonly method?: string;
  /** The statuses that pass: one or a list. Default: any 2xx. */
  readonly expectedStatus?: number | readonly number[];
}

export interface HealthCheckConfig {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly method: string;
  /** The statuses that pass; `null` for any 2xx. */
  readonly expectedStatus: readonly number[] | null;
}

const HEALTH_CHECK_DEFAULTS = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  method: "GET",
});

const KEYS = [
  "path",
  "intervalMs",
  "timeoutMs",
  "healthyThreshold",
  "unhealthyThreshold",
  "method",
  "expectedStatus",
] as const;
type Key = (typeof KEYS)[number];

/** An HTTP token (RFC 9110 §5.6.2), the grammar of a method name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Checks `value` and returns the frozen config: `undefined` or `false` → off.
 * @param option the option's path in messages: `"healthCheck"`, or `"defaults.healthCheck"`.
 * @example normalizeHealthCheckOptions({ path: "/healthz" }) // → { path: "/healthz", intervalMs: 10000, … }
 */
export function normalizeHealthCheckOptions(value: unknown, option = "healthCheck"): HealthCheckConfig | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) fail(option, value, `{ path, ${KEYS.slice(1).join("?, ")}? } or false (off)`);
  checkKeys(value, KEYS, option);
  const at = (key: Key): string => `${option}.${key}`;
  const pick = (key: Exclude<Key, "path" | "expectedStatus">): unknown =>
    value[key] === undefined ? HEALTH_CHECK_DEFAULTS[key] : value[key];

  const path = value.path;
  if (typeof path !== "string" || !path.startsWith("/"))
    fail(at("path"), path, 'a path starting with "/", e.g. "/healthz"');
  const intervalMs = pick("intervalMs");
  if (!isPositiveMs(intervalMs)) fail(at("intervalMs"), intervalMs, "a positive number of milliseconds");
  const timeoutMs = pick("timeoutMs");
  if (!isPositiveMs(timeoutMs) || timeoutMs > intervalMs) {
    fail(at("timeoutMs"), timeoutMs, `a positive number of milliseconds, at most ${option}.intervalMs (${intervalMs})`);
  }
  const healthyThreshold = pick("healthyThreshold");
  if (!isInteger(healthyThreshold))
    fail(at("healthyThreshold"), healthyThreshold, "an integer ≥ 1 (passed checks in a row)");
  const unhealthyThreshold = pick("unhealthyThreshold");
  if (!isInteger(unhealthyThreshold))
    fail(at("unhealthyThreshold"), unhealthyThreshold, "an integer ≥ 1 (failed checks in a row)");
  const method = pick("method");
  if (typeof method !== "string" || !TOKEN.test(method))
    fail(at("method"), method, 'an HTTP method such as "GET" or "HEAD"');
  const expected = value.expectedStatus;
  let expectedStatus: readonly number[] | null = null;
  if (expected !== undefined) {
    const list = typeof expected === "number" ? [expected] : expected;
    if (!Array.isArray(list) || list.length === 0 || !list.every(isStatus)) {
      fail(at("expectedStatus"), expected, "an HTTP status (100–599) or a non-empty list of them");
    }
    expectedStatus = Object.freeze([...(list as number[])]);
  }
  return Object.freeze({
    path,
    intervalMs,
    timeoutMs,
    healthyThreshold,
    unhealthyThreshold,
    method: method.toUpperCase(),
    expectedStatus,
  });
}

function isStatus(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 100 && value <= 599;
}

function isPositiveMs(value: unknown): value is number {
  return typeof value === "number" && value > 0 && Number.isFinite(value);
}

function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1;
}

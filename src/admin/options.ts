/**
 * Options of `serveAdmin`, checked once into a frozen config. Messages follow the client's format:
 * the option, the value given and what is allowed, so a typo (`prot: 9990`) fails loudly instead of
 * silently serving on a random port.
 *
 * The admin server binds to loopback unless told otherwise: it shows every endpoint the mesh talks
 * to and its health, which is nobody else's business (Envoy's and Finagle's admin ports carry the
 * same advice; Linkerd's viz dashboard is reached through a port-forward to localhost).
 */
import { InvalidOptionsError } from "../index.js";
import { isLoopback } from "./auth.js";

export interface AdminOptions {
  /** TCP port. Default 0: a free port chosen by the system (read it from the returned `url`). */
  readonly port?: number;
  /** Address to bind. Default `"127.0.0.1"`: reachable from this machine only. */
  readonly host?: string;
  /**
   * When set, every route wants `Authorization: Bearer <token>`, or `?token=<token>` in the URL
   * (a browser page and `EventSource` cannot send headers). Default: no token — allowed only when
   * `host` is a loopback address; any other `host` requires one.
   */
  readonly token?: string;
  /** How often the live stream (`/admin/events`) pushes a snapshot, ms, 50–1000. Default 1000. */
  readonly intervalMs?: number;
}

export interface AdminConfig {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  readonly intervalMs: number;
}

export const ADMIN_DEFAULTS = Object.freeze({ port: 0, host: "127.0.0.1", intervalMs: 1000 });

const KEYS = ["port", "host", "token", "intervalMs"] as const;
const MIN_INTERVAL_MS = 50;
const MAX_INTERVAL_MS = 1000;
/** RFC 6750 `b64token`: what may follow `Bearer ` in a header, so the same token works in both places. */
const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Checks `options` and returns the frozen config; throws `InvalidOptionsError` naming the option. */
export function normalizeAdminOptions(options: unknown): AdminConfig {
  if (options === undefined) return Object.freeze({ ...ADMIN_DEFAULTS, token: undefined });
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    fail("options", describe(options), "an object { port?, host?, token?, intervalMs? }");
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (given[key] !== undefined && !(KEYS as readonly string[]).includes(key)) {
      throw new InvalidOptionsError(key, `unknown option ${key} for serveAdmin; allowed: ${KEYS.join(", ")}`);
    }
  }
  const {
    port = ADMIN_DEFAULTS.port,
    host = ADMIN_DEFAULTS.host,
    token,
    intervalMs = ADMIN_DEFAULTS.intervalMs,
  } = given;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65_535) {
    fail("port", describe(port), "an integer from 0 to 65535 (0: a free port)");
  }
  if (typeof host !== "string" || host.trim() === "" || /\s/.test(host)) {
    fail("host", describe(host), 'an address to bind, e.g. "127.0.0.1" (the default) or "::1"');
  }
  if (token !== undefined && (typeof token !== "string" || !TOKEN_PATTERN.test(token))) {
    fail(
      "token",
      describeToken(token),
      "a non-empty string of letters, digits and -._~+/ (a bearer token), or undefined (no token)",
    );
  }
  if (token === undefined && !isLoopback(host)) {
    // Bound beyond loopback (0.0.0.0 so Prometheus can scrape it), the page and its data are open to
    // the network — and to any web page the operator visits, through DNS rebinding. A token closes both.
    fail(
      "token",
      "undefined",
      `a token when host is ${JSON.stringify(host)}, which is not loopback: the admin server lists every endpoint the process talks to (bind to "127.0.0.1", or set a token)`,
    );
  }
  if (
    typeof intervalMs !== "number" ||
    !Number.isFinite(intervalMs) ||
    intervalMs < MIN_INTERVAL_MS ||
    intervalMs > MAX_INTERVAL_MS
  ) {
    fail(
      "intervalMs",
      describe(intervalMs),
      `a number of milliseconds from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS} (the dashboard updates at least once a second)`,
    );
  }
  return Object.freeze({ port, host, token, intervalMs });
}

function fail(option: string, shown: string, allowed: string): never {
  throw new InvalidOptionsError(option, `invalid option ${option}: got ${shown}; expected ${allowed}`);
}

/** A rejected token is not echoed into an error message (and from there into logs). */
function describeToken(token: unknown): string {
  return typeof token === "string" && token.length > 0
    ? `a string of ${token.length} characters outside that set`
    : describe(token);
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol" || typeof value === "bigint") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return "a value JSON cannot show (a cycle?)";
  }
}

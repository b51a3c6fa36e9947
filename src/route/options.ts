/**
 * `routes` options: what a route matches, where it sends (a weighted split over endpoint subsets
 * or other services of the mesh, sticky by a key when asked), what it mirrors, which faults it
 * injects, and which of the client's policies it overrides. Checked once into frozen configs,
 * every message naming the path of the bad value (`routes[2].backends[1].weight`) — the same
 * messages for routes in code and in a dynamic config document.
 *
 * The policy options a route overrides (`timeout`, `retry`, `hedge`) are the client's own: their
 * rules live with the client's other options, which hands a `PolicyNormalizer` in, so a route's
 * `retry` is checked, merged over the client's and defaulted exactly as the client's is.
 */
import type { Classifier } from "../core/classifier.js";
import { compilePathPattern, type PathPattern } from "../core/path-pattern.js";
import { subsetOf, type EndpointSubset } from "../core/route.js";
import type { CallTimeout } from "../core/types.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";

/** How a header or query value is matched: a string is an exact match. */
export type StringMatch =
  | string
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly regex: string }
  | { readonly present: boolean };

export interface RouteMatch {
  /** One method or several (`"GET"`, `["PUT", "PATCH"]`). Default: any. */
  readonly method?: string | readonly string[];
  /**
   * The path (without the query): `"/v1/items"` exactly, `"/v1/items/:id"` a template (`:name` is
   * one segment), `"/static/*"` the prefix and everything under it, `"*"` any; or
   * `{ prefix: "/v1" }` (a plain string prefix), `{ regex: "^/v[12]/" }`. Default: any.
   */
  readonly path?: string | { readonly prefix: string } | { readonly regex: string };
  /** Request headers (names are case-insensitive), each must match. */
  readonly headers?: Readonly<Record<string, StringMatch>>;
  /** Query parameters, each must match. */
  readonly query?: Readonly<Record<string, StringMatch>>;
}

/** Where a route sends: the client's own endpoints, a subset of them, or another service of the mesh. */
export interface RouteBackend {
  /** Relative share of the route's calls (any numbers ≥ 0; 0 sends nothing). Default 1. */
  readonly weight?: number;
  /** Only endpoints whose discovery metadata has these values, e.g. `{ version: "v2" }`. */
  readonly subset?: Readonly<Record<string, string>>;
  /** Another client of the same mesh (`mesh.client("catalog-v2", …)`), with its own policies. */
  readonly service?: string;
}

export interface RouteMirror {
  /** The share of the route's calls copied, 0–100. */
  readonly percent: number;
  /** Copies to a subset of the client's endpoints… */
  readonly subset?: Readonly<Record<string, string>>;
  /** …or to another client of the mesh. */
  readonly service?: string;
  /** Copies in flight at most; one more is dropped (counted), never queued. Default 16. */
  readonly maxInFlight?: number;
  /** Header marking a copy (value `"1"`). Default `"x-weft-mirror"`; `false`: none. */
  readonly header?: string | false;
  /** A copy is abandoned after this long, ms. Default 5 000. */
  readonly timeoutMs?: number;
}

export interface RouteFault {
  /** Delays `percent` of the route's calls by `ms` before they are sent (the delay counts against the deadline). */
  readonly delay?: { readonly percent: number; readonly ms: number };
  /** Answers `percent` of the route's calls at once: with `status` (a response), or `error: true` (WEFT_ERR_FAULT_INJECTED). */
  readonly abort?: { readonly percent: number; readonly status?: number; readonly error?: true };
}

/**
 * A route, without the client options it may override (`timeout`, `retry`, `hedge`: the client's
 * `RouteOptions` adds them with the client's own types).
 */
export interface RouteOptionsBase {
  /** Names the route in snapshots, metrics and spans. Default: its method and path pattern (never the raw path). */
  readonly name?: string;
  /** What the route takes. Default: every call (a catch-all). Routes are tried in order; the first match wins. */
  readonly match?: RouteMatch;
  /** A weighted split; default: the client's endpoints. */
  readonly backends?: readonly RouteBackend[];
  /** Keeps one key on one backend while the weights stay (a consistent hash of a header or a cookie). */
  readonly sticky?: { readonly header: string } | { readonly cookie: string };
  /** Copies a share of calls to another backend, fire-and-forget. */
  readonly mirror?: RouteMirror;
  /** Injected delays and aborts, for chaos drills. Off unless set. */
  readonly fault?: RouteFault;
  /** Treats the route's calls as idempotent (safe to resend after they reached a server), or not. A call's own `idempotent` wins. */
  readonly idempotent?: boolean;
  /** The route's classifier (code only). */
  readonly classifier?: Classifier;
}

/** The options of the client a route may override, checked by the client's own rules. */
export const ROUTE_POLICY_KEYS = Object.freeze(["timeout", "retry", "hedge"]);

/** What the client's rules made of a route's policy options (or the config document's top level). */
export interface RoutePolicy {
  /** Timeouts to give the route's calls, under a call's own; null when the route sets none. */
  readonly timeout: CallTimeout | null;
  /** Normalized overrides by option key (`retry`, `hedge`), read by the layers that own them; null when none. */
  readonly overrides: Readonly<Record<string, unknown>> | null;
}

/** Checks the policy options present in `options` (any of ROUTE_POLICY_KEYS) against the client's; `at` is their parent's path. */
export type PolicyNormalizer = (options: Readonly<Record<string, unknown>>, at: string) => RoutePolicy;

export type CompiledStringMatch = (value: string | undefined) => boolean;

/** Where a path pattern sits in a table's index (see `MatchConfig.shape`). */
export interface PathShape {
  readonly segments: readonly string[];
  readonly prefix: boolean;
}

export interface MatchConfig {
  /** Upper-case methods; null for any. */
  readonly methods: ReadonlySet<string> | null;
  readonly path: PathPattern | null;
  /**
   * The path pattern's segments, for a table's index: `{ segments: ["v1", "items", ":"], prefix:
   * false }` for `"/v1/items/:id"` (`":"` is one non-empty segment), `prefix: true` for
   * `"/static/*"` (the node and everything under it); null when the route cannot be placed by its
   * path (no path test, `"*"`, `{ prefix }`, `{ regex }`): a table tries it for every path.
   */
  readonly shape: PathShape | null;
  readonly headers: readonly (readonly [name: string, test: CompiledStringMatch])[];
  readonly query: readonly (readonly [name: string, test: CompiledStringMatch])[];
}

export interface BackendConfig {
  readonly weight: number;
  readonly subset: EndpointSubset | null;
  readonly service: string | null;
  /** `"self"` (the client's endpoints), the subset's key, or `"service:name"` (with `/subset` when both). */
  readonly label: string;
}

export interface MirrorConfig {
  readonly percent: number;
  readonly target: BackendConfig;
  readonly maxInFlight: number;
  readonly header: string | false;
  readonly timeoutMs: number;
}

export interface FaultConfig {
  readonly delay: { readonly percent: number; readonly ms: number } | null;
  readonly abort: { readonly percent: number; readonly status: number | null } | null;
}

export interface RouteConfig {
  readonly name: string;
  readonly match: MatchConfig;
  readonly backends: readonly BackendConfig[];
  readonly sticky: { readonly header: string } | { readonly cookie: string } | null;
  readonly mirror: MirrorConfig | null;
  readonly fault: FaultConfig | null;
  readonly policy: RoutePolicy;
  readonly idempotent: boolean | null;
  readonly classifier: Classifier | null;
}

const ROUTE_KEYS = [
  "name",
  "match",
  "backends",
  "sticky",
  "mirror",
  "fault",
  "idempotent",
  "classifier",
  ...ROUTE_POLICY_KEYS,
];
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
/** The name of what no route takes (the table's fallback). */
export const FALLBACK_NAME = "default";
const MAX_ROUTES = 1000;
const DEFAULT_MIRROR = Object.freeze({ maxInFlight: 16, header: "x-weft-mirror", timeoutMs: 5000 });

/**
 * Checks `routes` (an array of RouteOptions) into frozen configs.
 * @param self the client's service name (a backend naming it means the client's own endpoints)
 * @example normalizeRoutes([{ match: { path: "/v1/items/:id" }, timeout: { totalMs: 500 } }], "routes", "catalog", policy)
 */
export function normalizeRoutes(
  value: unknown,
  at: string,
  self: string,
  policy: PolicyNormalizer,
): readonly RouteConfig[] {
  if (!Array.isArray(value)) fail(at, value, "an array of routes [{ match?, backends?, timeout?, retry?, … }]");
  if (value.length > MAX_ROUTES) fail(at, `(${value.length} routes)`, `at most ${MAX_ROUTES} routes`);
  const routes = value.map((route: unknown, i) => normalizeRoute(route, `${at}[${i}]`, self, policy));
  // Names label metrics and snapshots: unique, and never the catch-all's. A name a route was
  // given must be unique; a generated one (its pattern) gets " #2", " #3"… on a repeat.
  const seen = new Set<string>([FALLBACK_NAME]);
  return Object.freeze(
    routes.map((route, i) => {
      const given = isPlainObject(value[i]) && value[i].name !== undefined;
      if (!seen.has(route.name)) {
        seen.add(route.name);
        return route;
      }
      if (given)
        fail(
          `${at}[${i}].name`,
          route.name,
          route.name === FALLBACK_NAME
            ? `a name other than "${FALLBACK_NAME}" (it names what no route takes)`
            : "a name no other route has (names label metrics and snapshots)",
        );
      let n = 2;
      while (seen.has(`${route.name} #${n}`)) n++;
      const name = `${route.name} #${n}`;
      seen.add(name);
      return Object.freeze({ ...route, name });
    }),
  );
}

function normalizeRoute(value: unknown, at: string, self: string, policy: PolicyNormalizer): RouteConfig {
  if (!isPlainObject(value)) fail(at, value, "a route { match?, backends?, sticky?, mirror?, fault?, timeout?, … }");
  checkKeys(value, ROUTE_KEYS, at);
  const match = normalizeMatch(value.match, `${at}.match`);
  const backends = normalizeBackends(value.backends, `${at}.backends`, self);
  const name = value.name === undefined ? defaultName(match) : value.name;
  if (typeof name !== "string" || name.trim() === "" || name.length > 100)
    fail(`${at}.name`, name, "a non-empty string of at most 100 characters");
  let sticky: RouteConfig["sticky"] = null;
  if (value.sticky !== undefined) {
    const s = value.sticky;
    if (!isPlainObject(s)) fail(`${at}.sticky`, s, '{ header: "x-user" } or { cookie: "session" }');
    checkKeys(s, ["header", "cookie"], `${at}.sticky`);
    if ((s.header === undefined) === (s.cookie === undefined))
      fail(`${at}.sticky`, s, '{ header: "x-user" } or { cookie: "session" } (one of them)');
    if (s.header !== undefined) sticky = Object.freeze({ header: headerName(s.header, `${at}.sticky.header`) });
    else {
      if (typeof s.cookie !== "string" || !TOKEN.test(s.cookie)) fail(`${at}.sticky.cookie`, s.cookie, "a cookie name");
      sticky = Object.freeze({ cookie: s.cookie });
    }
    if (backends.length < 2) fail(`${at}.sticky`, s, "a route with at least two backends to choose between");
  }
  const idempotent = value.idempotent;
  if (idempotent !== undefined && typeof idempotent !== "boolean")
    fail(`${at}.idempotent`, idempotent, "true or false");
  const classifier = value.classifier;
  if (classifier !== undefined && typeof classifier !== "function")
    fail(`${at}.classifier`, classifier, "a function (req, res, error) => outcome");
  return Object.freeze({
    name,
    match,
    backends,
    sticky,
    mirror: value.mirror === undefined ? null : normalizeMirror(value.mirror, `${at}.mirror`, self),
    fault: value.fault === undefined ? null : normalizeFault(value.fault, `${at}.fault`),
    policy: policy(value, at),
    idempotent: idempotent ?? null,
    classifier: (classifier as Classifier | undefined) ?? null,
  });
}

function normalizeMatch(value: unknown, at: string): MatchConfig {
  if (value === undefined) return Object.freeze({ methods: null, path: null, shape: null, headers: [], query: [] });
  if (!isPlainObject(value)) fail(at, value, "{ method?, path?, headers?, query? }");
  checkKeys(value, ["method", "path", "headers", "query"], at);
  let methods: Set<string> | null = null;
  if (value.method !== undefined) {
    const list = Array.isArray(value.method) ? (value.method as unknown[]) : [value.method];
    if (list.length === 0) fail(`${at}.method`, value.method, 'a method ("GET") or a non-empty list of methods');
    methods = new Set(
      list.map((m, i) => {
        const where = Array.isArray(value.method) ? `${at}.method[${i}]` : `${at}.method`;
        if (typeof m !== "string" || !TOKEN.test(m)) fail(where, m, 'an HTTP method such as "GET"');
        return m.toUpperCase();
      }),
    );
  }
  const path = value.path === undefined ? null : normalizePath(value.path, `${at}.path`);
  return Object.freeze({
    methods,
    path,
    shape: typeof value.path === "string" ? pathShape(value.path) : null,
    headers: normalizeValueMatches(value.headers, `${at}.headers`, true),
    query: normalizeValueMatches(value.query, `${at}.query`, false),
  });
}

/** A path pattern's segments (see `MatchConfig.shape`); null for `"*"` and `"/*"`, which take every path. */
function pathShape(pattern: string): PathShape | null {
  if (!pattern.startsWith("/")) return null;
  const prefix = pattern.endsWith("/*");
  const body = prefix ? pattern.slice(1, -2) : pattern.slice(1);
  if (prefix && body === "") return null;
  const segments = body.split("/").map((s) => (s.startsWith(":") ? ":" : s));
  // A prefix pattern matches its text literally (compilePathPattern): a ":" there is no parameter.
  if (prefix && segments.includes(":")) return null;
  return Object.freeze({ segments: Object.freeze(segments), prefix });
}

function normalizePath(value: unknown, at: string): PathPattern {
  if (typeof value === "string") return compilePathPattern(value, at);
  const allowed =
    '"/exact", "/template/:id", "/prefix/*", "*", { prefix: "/v1" } or { regex: "^/v[12]/" } (matched without the query)';
  if (!isPlainObject(value)) fail(at, value, allowed);
  checkKeys(value, ["prefix", "regex"], at);
  if (value.prefix !== undefined && value.regex === undefined) {
    const prefix = value.prefix;
    if (typeof prefix !== "string" || !prefix.startsWith("/"))
      fail(`${at}.prefix`, prefix, 'a path prefix such as "/v1"');
    return { label: `${prefix}…`, matches: (path) => path.startsWith(prefix) };
  }
  if (value.regex !== undefined && value.prefix === undefined) {
    const regex = compileRegex(value.regex, `${at}.regex`);
    return { label: `~${regex.source}`, matches: (path) => regex.test(path) };
  }
  return fail(at, value, allowed);
}

function normalizeValueMatches(
  value: unknown,
  at: string,
  headers: boolean,
): readonly (readonly [string, CompiledStringMatch])[] {
  if (value === undefined) return Object.freeze([]);
  if (!isPlainObject(value))
    fail(
      at,
      value,
      `an object of ${headers ? "header names" : "query parameters"} to values or { exact | prefix | regex | present }`,
    );
  return Object.freeze(
    Object.entries(value).map(([key, m]) => {
      const name = headers ? headerName(key, `${at}.${key}`) : key;
      return Object.freeze([name, compileStringMatch(m, `${at}.${key}`)] as const);
    }),
  );
}

function compileStringMatch(value: unknown, at: string): CompiledStringMatch {
  if (typeof value === "string") return (v) => v === value;
  const allowed = '"exact value", { exact }, { prefix }, { regex } or { present: true | false }';
  if (!isPlainObject(value)) fail(at, value, allowed);
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  if (keys.length !== 1) fail(at, value, `${allowed} (one of them)`);
  checkKeys(value, ["exact", "prefix", "regex", "present"], at);
  const [kind] = keys;
  const operand = value[kind as string];
  if (kind === "present") {
    if (typeof operand !== "boolean") fail(`${at}.present`, operand, "true or false");
    return operand ? (v) => v !== undefined : (v) => v === undefined;
  }
  if (kind === "regex") {
    const regex = compileRegex(operand, `${at}.regex`);
    return (v) => v !== undefined && regex.test(v);
  }
  if (typeof operand !== "string") fail(`${at}.${kind}`, operand, "a string");
  return kind === "exact" ? (v) => v === operand : (v) => v !== undefined && v.startsWith(operand);
}

function compileRegex(value: unknown, at: string): RegExp {
  if (typeof value !== "string" || value === "") fail(at, value, "a regular expression (a string)");
  try {
    return new RegExp(value);
  } catch (error) {
    return fail(at, value, `a valid regular expression (${(error as Error).message})`);
  }
}

function normalizeBackends(value: unknown, at: string, self: string): readonly BackendConfig[] {
  if (value === undefined)
    return Object.freeze([Object.freeze({ weight: 1, subset: null, service: null, label: "self" })]);
  if (!Array.isArray(value) || value.length === 0)
    fail(at, value, "a non-empty array of backends [{ weight?, subset?, service? }]");
  const backends = value.map((b: unknown, i) => normalizeBackend(b, `${at}[${i}]`, self, true));
  if (!backends.some((b) => b.weight > 0)) fail(at, value, "at least one backend with a weight above 0");
  const labels = new Set<string>();
  backends.forEach((b, i) => {
    if (labels.has(b.label)) fail(`${at}[${i}]`, value[i], `a backend not already in the list (${b.label} is)`);
    labels.add(b.label);
  });
  return Object.freeze(backends);
}

function normalizeBackend(value: unknown, at: string, self: string, weighted: boolean): BackendConfig {
  if (!isPlainObject(value)) fail(at, value, "{ weight?, subset?, service? }");
  checkKeys(value, weighted ? ["weight", "subset", "service"] : ["subset", "service"], at);
  const weight = value.weight ?? 1;
  if (!(typeof weight === "number" && Number.isFinite(weight) && weight >= 0 && weight <= 1e6))
    fail(`${at}.weight`, weight, "a number from 0 to 1 000 000 (a relative share)");
  let subset: EndpointSubset | null = null;
  if (value.subset !== undefined) {
    const s = value.subset;
    if (!isPlainObject(s) || Object.keys(s).length === 0 || !Object.values(s).every((v) => typeof v === "string"))
      fail(`${at}.subset`, s, 'discovery metadata to select, e.g. { version: "v2" } (string values)');
    subset = subsetOf(s as Record<string, string>);
  }
  let service: string | null = null;
  if (value.service !== undefined) {
    if (typeof value.service !== "string" || value.service.trim() === "")
      fail(`${at}.service`, value.service, "the name of another client of the mesh");
    if (value.service !== self) service = value.service;
  }
  const label =
    service === null ? (subset?.key ?? "self") : `service:${service}${subset === null ? "" : `/${subset.key}`}`;
  return Object.freeze({ weight, subset, service, label });
}

function normalizeMirror(value: unknown, at: string, self: string): MirrorConfig {
  if (!isPlainObject(value)) fail(at, value, "{ percent, subset? | service?, maxInFlight?, header?, timeoutMs? }");
  checkKeys(value, ["percent", "subset", "service", "maxInFlight", "header", "timeoutMs"], at);
  const { percent, maxInFlight = DEFAULT_MIRROR.maxInFlight, header = DEFAULT_MIRROR.header } = value;
  const target = normalizeBackend({ subset: value.subset, service: value.service }, at, self, false);
  if (target.subset === null && target.service === null)
    fail(at, value, "a mirror target: subset (of this client's endpoints) or service (another client of the mesh)");
  if (!(Number.isInteger(maxInFlight) && (maxInFlight as number) >= 1 && (maxInFlight as number) <= 10_000))
    fail(`${at}.maxInFlight`, maxInFlight, "an integer from 1 to 10 000");
  if (header !== false) headerName(header, `${at}.header`);
  const timeoutMs =
    (checkMs(`${at}.timeoutMs`, value.timeoutMs, false) as number | undefined) ?? DEFAULT_MIRROR.timeoutMs;
  return Object.freeze({
    percent: checkPercent(percent, `${at}.percent`),
    target,
    maxInFlight: maxInFlight as number,
    header: header === false ? false : (header as string).toLowerCase(),
    timeoutMs,
  });
}

function normalizeFault(value: unknown, at: string): FaultConfig {
  if (!isPlainObject(value)) fail(at, value, "{ delay?: { percent, ms }, abort?: { percent, status | error: true } }");
  checkKeys(value, ["delay", "abort"], at);
  let delay: FaultConfig["delay"] = null;
  if (value.delay !== undefined) {
    const d = value.delay;
    if (!isPlainObject(d)) fail(`${at}.delay`, d, "{ percent, ms }");
    checkKeys(d, ["percent", "ms"], `${at}.delay`);
    const ms = checkMs(`${at}.delay.ms`, d.ms, false);
    if (typeof ms !== "number") fail(`${at}.delay.ms`, d.ms, "a positive number of milliseconds");
    delay = Object.freeze({ percent: checkPercent(d.percent, `${at}.delay.percent`), ms });
  }
  let abort: FaultConfig["abort"] = null;
  if (value.abort !== undefined) {
    const a = value.abort;
    if (!isPlainObject(a)) fail(`${at}.abort`, a, "{ percent, status } or { percent, error: true }");
    checkKeys(a, ["percent", "status", "error"], `${at}.abort`);
    if ((a.status === undefined) === (a.error === undefined))
      fail(`${at}.abort`, a, "{ percent, status } or { percent, error: true } (one of them)");
    if (a.error !== undefined && a.error !== true) fail(`${at}.abort.error`, a.error, "true");
    const status = a.status;
    if (status !== undefined && !(Number.isInteger(status) && (status as number) >= 200 && (status as number) <= 599))
      fail(`${at}.abort.status`, status, "an HTTP status from 200 to 599");
    abort = Object.freeze({
      percent: checkPercent(a.percent, `${at}.abort.percent`),
      status: (status as number) ?? null,
    });
  }
  if (delay === null && abort === null) fail(at, value, "delay, abort or both");
  return Object.freeze({ delay, abort });
}

function checkPercent(value: unknown, at: string): number {
  if (!(typeof value === "number" && value >= 0 && value <= 100)) fail(at, value, "a percentage from 0 to 100");
  return value;
}

function headerName(value: unknown, at: string): string {
  if (typeof value !== "string" || !TOKEN.test(value)) fail(at, value, 'an HTTP header name such as "x-canary"');
  return value.toLowerCase();
}

/** A bounded label: the method(s) and the path pattern, never a raw path. */
function defaultName(match: MatchConfig): string {
  const methods = match.methods === null ? "" : `${[...match.methods].join(",")} `;
  const path = match.path?.label ?? (match.headers.length + match.query.length > 0 ? "(by header)" : "*");
  return `${methods}${path}`;
}

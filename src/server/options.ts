/**
 * `inbound(options)`: checked once and normalized into a frozen config. As for clients, every
 * message names the option, the value and what is allowed, and an unknown key fails (a typo in
 * `shed` or `authz` would otherwise turn a protection off without a word).
 */
import type { IncomingMessage } from "node:http";
import type { MeterProvider } from "../telemetry/index.js";
import type { Clock } from "../core/clock.js";
import { systemClock } from "../core/clock.js";
import type { ServerSource } from "../core/server-snapshot.js";
import type { Disposer } from "../core/types.js";
import { checkInteger, checkKeys, checkNumber, fail, isPlainObject } from "../core/validate.js";
import { ADAPTIVE_LIMIT_DEFAULTS } from "./adaptive-limit.js";
import type { AdmissionConfig, Priority } from "./admission.js";
import { PRIORITIES } from "./admission.js";
import { Authorizer, type AuthzOptions } from "./authz.js";
import type { HeaderIdentityConfig } from "./identity.js";
import { isTlsSource, tlsMaterial, type TlsSource } from "../security/material.js";

export interface DeadlineOptions {
  /** The header carrying the caller's time left, ms. Default `"x-weft-timeout-ms"` (what weft clients send). */
  readonly header?: string;
  /** Also read gRPC's `grpc-timeout` (`"250m"`) when weft's header is absent. Default true. */
  readonly grpcTimeout?: boolean;
  /**
   * Taken off the caller's time before outbound calls inherit it, ms: the time to write the
   * response back. Default 2.
   */
  readonly allowanceMs?: number;
  /** The longest deadline accepted; a caller asking for more gets this. Default 60 000. */
  readonly maxMs?: number;
  /** The deadline of a request that brings none, ms; `false`: none. Default false. */
  readonly defaultMs?: number | false;
}

/**
 * `shed`: admission control — a fixed limit, or an adaptive one (Envoy's gradient controller).
 * @example shed: { limit: 64 }
 * @example shed: { adaptive: true, maxLimit: 500 }
 */
export interface ShedOptions {
  readonly adaptive?: boolean;
  /** Fixed mode: requests handled at once. */
  readonly limit?: number;
  /** `Retry-After` on a shed 503, seconds. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Adaptive: the limit before the first window. Default 20. */
  readonly initialLimit?: number;
  /** Adaptive: the lowest limit. Default 3. */
  readonly minLimit?: number;
  /** Adaptive: the highest limit. Default 1000. */
  readonly maxLimit?: number;
  /** Adaptive: how often the limit moves, ms. Default 100. */
  readonly windowMs?: number;
  /** Adaptive: samples a window needs before it closes. Default 10. */
  readonly minSamples?: number;
  /** Adaptive: latency tolerated over the no-load level before the limit shrinks, percent. Default 25. */
  readonly bufferPercent?: number;
  /** Adaptive: how far back the no-load latency is looked for, ms. Default 30 000. */
  readonly minRttWindowMs?: number;
}

/** `identity`: a trusted proxy's identity header (mTLS peers are always read from the TLS socket). */
export interface IdentityOptions {
  /** The header, e.g. `"x-forwarded-client-cert"` (Envoy) or `"x-weft-peer-identity"`. */
  readonly header: string;
  /** `"xfcc"` (Envoy's format) or `"spiffe"` (the bare ID). Default: `"xfcc"` for x-forwarded-client-cert, else `"spiffe"`. */
  readonly format?: "xfcc" | "spiffe";
  /** Addresses of the proxies allowed to set it (e.g. `["127.0.0.1", "::1"]` for a sidecar). Required. */
  readonly trustedProxies: readonly string[];
}

export interface HealthOptions {
  /** Liveness: 200 while the process serves. Default `"/healthz"`. */
  readonly livePath?: string;
  /** Readiness: 200 while ready, 503 once draining or while `ready()` says no. Default `"/readyz"`. */
  readonly readyPath?: string;
  /** Extra readiness check (a warmed cache, a database): true when ready. Default: always ready. */
  readonly ready?: () => boolean | Promise<boolean>;
}

export interface DrainOptions {
  /** Time given to requests in flight after the server stops accepting, ms. Default 10 000. */
  readonly graceMs?: number;
  /**
   * After readiness fails and registrations are revoked, how long to keep serving (answering with
   * `Connection: close`) before no new connection is accepted, ms — the time callers need to stop
   * picking this instance (etcd watchers: milliseconds; Kubernetes endpoints: seconds). Default 1000.
   */
  readonly delayMs?: number;
  /** Revoked first when the drain begins: `etcdRegistration(...)` handles, or anything with `close()`. */
  readonly deregister?: readonly { close(): Promise<unknown> | unknown }[];
  /** Signals that start `drain()` and then end the process (exit code 0). Default none. */
  readonly signals?: readonly NodeJS.Signals[];
}

export interface InboundOptions {
  /** The service this server is: its name in metrics, spans, snapshots and logs. Required. */
  readonly service: string;
  /** Shows this server in the mesh's `snapshot().servers`, admin page and Prometheus text. */
  readonly mesh?: { addServer(server: ServerSource): Disposer };
  /** Deadline propagation from the caller's header; `false`: ignore callers' deadlines. */
  readonly deadline?: DeadlineOptions | false;
  /** Admission control (load shedding). Off unless set. */
  readonly shed?: ShedOptions | false;
  /** The priority class of a request (`critical`, `high`, `normal`, `low`). Default: every request `normal`. */
  readonly priority?: (req: IncomingMessage) => Priority;
  /** A trusted proxy's identity header. Off unless set. */
  readonly identity?: IdentityOptions | false;
  /**
   * TLS termination material for `https.createServer(server.tlsOptions(), …)`: the server
   * certificate, the trust bundle client certificates must chain to, and whether one is required
   * (`clientCert`, default `"require"` when a `ca` is given). From `source: tlsFiles(…)` it rotates:
   * `attach(httpsServer)` applies new material to new connections.
   */
  readonly tls?: ServerTlsOptions;
  /** Access rules per route (default deny once set). Off unless set. */
  readonly authz?: AuthzOptions | false;
  /** `/healthz` and `/readyz`; `false`: leave those paths to the application. */
  readonly health?: HealthOptions | false;
  readonly drain?: DrainOptions;
  /**
   * The route template of a request (`"/v1/items/:id"`), for metrics and the span name. Express
   * and Fastify routes are read without this; for plain `node:http`, return a template — never
   * the raw path, which would make a metric series per id.
   */
  readonly route?: (req: IncomingMessage) => string | undefined;
  /** A SERVER span per request when a tracer provider is registered. Default true. */
  readonly tracing?: boolean;
  /** OpenTelemetry metrics when a meter provider is registered or given. Default true. */
  readonly metrics?: boolean | { readonly meterProvider?: MeterProvider };
  /** Receives warnings (authorization denials, at most one a second). Default `process.emitWarning`. */
  readonly onWarning?: (message: string) => void;
  readonly clock?: Clock;
}

export interface ServerTlsOptions {
  /** `tlsFiles({ cert, key, ca })` or `tlsMaterial({ … })`; or the PEM inline below. */
  readonly source?: TlsSource;
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
  /** `"require"` (mTLS: no verified client certificate, no connection), `"request"` (verified when sent), `"none"`. */
  readonly clientCert?: "require" | "request" | "none";
}

export interface InboundConfig {
  readonly service: string;
  readonly mesh: InboundOptions["mesh"];
  readonly deadline:
    | {
        readonly header: string;
        readonly grpcTimeout: boolean;
        readonly allowanceMs: number;
        readonly maxMs: number;
        readonly defaultMs: number | false;
      }
    | false;
  readonly admission: AdmissionConfig | false;
  readonly retryAfterSeconds: number;
  readonly priority: ((req: IncomingMessage) => Priority) | undefined;
  readonly identity: HeaderIdentityConfig | null;
  readonly authorizer: Authorizer | null;
  readonly tls: { readonly source: TlsSource; readonly clientCert: "require" | "request" | "none" } | null;
  readonly health:
    | {
        readonly livePath: string;
        readonly readyPath: string;
        readonly ready: (() => boolean | Promise<boolean>) | undefined;
      }
    | false;
  readonly drain: {
    readonly graceMs: number;
    readonly delayMs: number;
    readonly deregister: readonly { close(): Promise<unknown> | unknown }[];
    readonly signals: readonly NodeJS.Signals[];
  };
  readonly route: ((req: IncomingMessage) => string | undefined) | undefined;
  readonly tracing: boolean;
  readonly metrics: false | { readonly meterProvider: MeterProvider | undefined };
  readonly warn: (message: string) => void;
  readonly clock: Clock;
}

const KEYS = [
  "service",
  "mesh",
  "deadline",
  "shed",
  "priority",
  "identity",
  "tls",
  "authz",
  "health",
  "drain",
  "route",
  "tracing",
  "metrics",
  "onWarning",
  "clock",
] as const;
const ADAPTIVE_KEYS = [
  "initialLimit",
  "minLimit",
  "maxLimit",
  "windowMs",
  "minSamples",
  "bufferPercent",
  "minRttWindowMs",
] as const;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
const SIGNALS = new Set(["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"]);

export const INBOUND_DEFAULTS = Object.freeze({
  deadline: Object.freeze({
    header: "x-weft-timeout-ms",
    grpcTimeout: true,
    allowanceMs: 2,
    maxMs: 60_000,
    defaultMs: false as const,
  }),
  retryAfterSeconds: 1,
  health: Object.freeze({ livePath: "/healthz", readyPath: "/readyz" }),
  drain: Object.freeze({ graceMs: 10_000, delayMs: 1000 }),
});

export function normalizeInboundOptions(options: unknown): InboundConfig {
  if (!isPlainObject(options)) fail("inbound options", options, "an object with at least { service }");
  checkKeys(options, KEYS, "");
  const service = options.service;
  if (typeof service !== "string" || service.trim() === "")
    fail("service", service, "a non-empty string naming this service");
  const mesh = options.mesh;
  if (
    mesh !== undefined &&
    !(typeof mesh === "object" && mesh !== null && typeof (mesh as { addServer?: unknown }).addServer === "function")
  ) {
    fail("mesh", mesh, "a mesh from createMesh()");
  }
  for (const key of ["priority", "route", "onWarning"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function") fail(key, options[key], "a function");
  }
  if (options.tracing !== undefined && typeof options.tracing !== "boolean")
    fail("tracing", options.tracing, "true or false");
  const clock = options.clock;
  if (
    clock !== undefined &&
    !(
      typeof clock === "object" &&
      clock !== null &&
      typeof (clock as Clock).now === "function" &&
      typeof (clock as Clock).setTimer === "function"
    )
  ) {
    fail("clock", clock, "a Clock { now(), wallNow(), setTimer(fn, ms) }, e.g. fakeClock() from weft/testing");
  }
  const shed = normalizeShed(options.shed);
  return Object.freeze({
    service,
    mesh: mesh as InboundOptions["mesh"],
    deadline: normalizeDeadline(options.deadline),
    admission: shed === false ? false : shed.admission,
    retryAfterSeconds: shed === false ? INBOUND_DEFAULTS.retryAfterSeconds : shed.retryAfterSeconds,
    priority: options.priority as InboundConfig["priority"],
    identity: normalizeIdentity(options.identity),
    authorizer: options.authz === undefined || options.authz === false ? null : new Authorizer(options.authz),
    tls: normalizeTls(options.tls),
    health: normalizeHealth(options.health),
    drain: normalizeDrain(options.drain),
    route: options.route as InboundConfig["route"],
    tracing: options.tracing ?? true,
    metrics: normalizeMetrics(options.metrics),
    warn:
      (options.onWarning as ((message: string) => void) | undefined) ??
      ((message: string) => process.emitWarning(message, { code: "WEFT_WARNING" })),
    clock: (clock as Clock | undefined) ?? systemClock,
  });
}

function normalizeTls(value: unknown): InboundConfig["tls"] {
  if (value === undefined) return null;
  if (!isPlainObject(value)) fail("tls", value, "{ source?, cert?, key?, ca?, clientCert? }");
  checkKeys(value, ["source", "cert", "key", "ca", "clientCert"], "tls");
  const inline = value.cert !== undefined || value.key !== undefined || value.ca !== undefined;
  if (value.source !== undefined && !isTlsSource(value.source))
    fail("tls.source", value.source, "tlsFiles({ cert, key, ca }) or tlsMaterial({ cert, key, ca })");
  if (value.source !== undefined && inline)
    fail("tls.source", "source + inline PEM", "either `source` or inline `cert` / `key` / `ca`, not both");
  let source: TlsSource;
  if (value.source !== undefined) source = value.source;
  else {
    for (const key of ["cert", "key", "ca"] as const) {
      if (value[key] !== undefined && typeof value[key] !== "string") fail(`tls.${key}`, value[key], "a PEM string");
    }
    try {
      source = tlsMaterial({
        cert: value.cert as string | undefined,
        key: value.key as string | undefined,
        ca: value.ca as string | undefined,
      });
    } catch (error) {
      return fail("tls.cert", "(PEM)", `valid TLS material: ${(error as Error).message}`);
    }
  }
  if (source.current.cert === undefined)
    fail("tls.cert", undefined, "a server certificate and key (the source has none)");
  const clientCert = value.clientCert ?? (source.current.ca === undefined ? "none" : "require");
  if (clientCert !== "require" && clientCert !== "request" && clientCert !== "none")
    fail("tls.clientCert", clientCert, '"require", "request" or "none"');
  if (clientCert !== "none" && source.current.ca === undefined)
    fail("tls.clientCert", clientCert, '"none" without a `ca` (client certificates are verified against it)');
  return Object.freeze({ source, clientCert });
}

/** The priority a `priority` function returned, checked (a typo would silently become "normal"). */
export function checkPriority(value: unknown): Priority {
  if (typeof value === "string" && (PRIORITIES as readonly string[]).includes(value)) return value as Priority;
  return fail(
    "priority",
    value,
    `the priority function to return one of ${PRIORITIES.map((p) => JSON.stringify(p)).join(", ")}`,
  );
}

function normalizeDeadline(value: unknown): InboundConfig["deadline"] {
  const d = INBOUND_DEFAULTS.deadline;
  if (value === undefined) return d;
  if (value === false) return false;
  if (!isPlainObject(value))
    fail("deadline", value, "{ header?, grpcTimeout?, allowanceMs?, maxMs?, defaultMs? } or false");
  checkKeys(value, ["header", "grpcTimeout", "allowanceMs", "maxMs", "defaultMs"], "deadline");
  const header = value.header ?? d.header;
  if (typeof header !== "string" || !HEADER_NAME.test(header))
    fail("deadline.header", header, 'an HTTP header name such as "x-weft-timeout-ms"');
  const grpcTimeout = value.grpcTimeout ?? d.grpcTimeout;
  if (typeof grpcTimeout !== "boolean") fail("deadline.grpcTimeout", grpcTimeout, "true or false");
  const allowanceMs = checkNumber(
    "deadline.allowanceMs",
    value.allowanceMs,
    d.allowanceMs,
    (n) => n >= 0,
    "a non-negative number of milliseconds",
  );
  const maxMs = checkNumber("deadline.maxMs", value.maxMs, d.maxMs, (n) => n > 0, "a positive number of milliseconds");
  const defaultMs =
    value.defaultMs === undefined || value.defaultMs === false
      ? false
      : checkNumber(
          "deadline.defaultMs",
          value.defaultMs,
          0,
          (n) => n > 0,
          "a positive number of milliseconds or false",
        );
  return Object.freeze({ header: header.toLowerCase(), grpcTimeout, allowanceMs, maxMs, defaultMs });
}

function normalizeShed(value: unknown): { admission: AdmissionConfig; retryAfterSeconds: number } | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) fail("shed", value, "{ limit }, { adaptive: true, ... } or false (off)");
  const adaptive = value.adaptive;
  if (adaptive !== undefined && typeof adaptive !== "boolean") fail("shed.adaptive", adaptive, "true or false");
  const retryAfterSeconds = checkInteger(
    "shed.retryAfterSeconds",
    value.retryAfterSeconds,
    INBOUND_DEFAULTS.retryAfterSeconds,
    0,
  );
  if (adaptive !== true) {
    for (const key of ADAPTIVE_KEYS) {
      if (value[key] !== undefined)
        fail(`shed.${key}`, value[key], "nothing: it applies to the adaptive limit only (add adaptive: true)");
    }
    checkKeys(value, ["adaptive", "limit", "retryAfterSeconds"], "shed");
    if (value.limit === undefined)
      fail("shed.limit", undefined, "a positive integer (requests handled at once), or adaptive: true");
    const limit = checkInteger("shed.limit", value.limit, 0, 1);
    return { admission: Object.freeze({ adaptive: false, limit }), retryAfterSeconds };
  }
  if (value.limit !== undefined)
    fail("shed.limit", value.limit, "nothing with adaptive: true (use initialLimit, minLimit and maxLimit)");
  checkKeys(value, ["adaptive", "retryAfterSeconds", ...ADAPTIVE_KEYS], "shed");
  const d = ADAPTIVE_LIMIT_DEFAULTS;
  const minLimit = checkInteger("shed.minLimit", value.minLimit, d.minLimit, 1);
  const maxLimit = checkInteger("shed.maxLimit", value.maxLimit, Math.max(d.maxLimit, minLimit), 1);
  if (maxLimit < minLimit) fail("shed.maxLimit", maxLimit, `at least shed.minLimit (${minLimit})`);
  const initialLimit = checkInteger(
    "shed.initialLimit",
    value.initialLimit,
    Math.min(Math.max(d.initialLimit, minLimit), maxLimit),
    1,
  );
  if (initialLimit < minLimit || initialLimit > maxLimit)
    fail(
      "shed.initialLimit",
      initialLimit,
      `an integer between shed.minLimit (${minLimit}) and shed.maxLimit (${maxLimit})`,
    );
  const windowMs = checkNumber(
    "shed.windowMs",
    value.windowMs,
    d.windowMs,
    (n) => n > 0,
    "a positive number of milliseconds",
  );
  const minSamples = checkInteger("shed.minSamples", value.minSamples, d.minSamples, 1);
  const bufferPercent = checkNumber(
    "shed.bufferPercent",
    value.bufferPercent,
    d.bufferPercent,
    (n) => n >= 0,
    "a non-negative percentage",
  );
  const minRttWindowMs = checkNumber(
    "shed.minRttWindowMs",
    value.minRttWindowMs,
    d.minRttWindowMs,
    (n) => n >= windowMs,
    `a number of milliseconds of at least shed.windowMs (${windowMs})`,
  );
  return {
    admission: Object.freeze({
      adaptive: true,
      initialLimit,
      minLimit,
      maxLimit,
      windowMs,
      minSamples,
      bufferPercent,
      minRttWindowMs,
    }),
    retryAfterSeconds,
  };
}

function normalizeIdentity(value: unknown): HeaderIdentityConfig | null {
  if (value === undefined || value === false) return null;
  if (!isPlainObject(value))
    fail("identity", value, "{ header, trustedProxies, format? } or false (mTLS identities need no option)");
  checkKeys(value, ["header", "format", "trustedProxies"], "identity");
  const header = value.header;
  if (typeof header !== "string" || !HEADER_NAME.test(header))
    fail("identity.header", header, 'an HTTP header name such as "x-forwarded-client-cert"');
  const name = header.toLowerCase();
  const format = value.format ?? (name === "x-forwarded-client-cert" ? "xfcc" : "spiffe");
  if (format !== "xfcc" && format !== "spiffe") fail("identity.format", format, '"xfcc" or "spiffe"');
  const proxies = value.trustedProxies;
  if (!Array.isArray(proxies) || proxies.length === 0 || proxies.some((p) => typeof p !== "string" || p === "")) {
    fail(
      "identity.trustedProxies",
      proxies,
      'a non-empty array of the proxies\' addresses, e.g. ["127.0.0.1", "::1"]: a header from anyone else is dropped',
    );
  }
  return Object.freeze({ header: name, format, trustedProxies: new Set(proxies as string[]) });
}

function normalizeHealth(value: unknown): InboundConfig["health"] {
  const d = INBOUND_DEFAULTS.health;
  if (value === undefined) return Object.freeze({ ...d, ready: undefined });
  if (value === false) return false;
  if (!isPlainObject(value)) fail("health", value, "{ livePath?, readyPath?, ready? } or false");
  checkKeys(value, ["livePath", "readyPath", "ready"], "health");
  const livePath = value.livePath ?? d.livePath;
  const readyPath = value.readyPath ?? d.readyPath;
  for (const [key, path] of [
    ["livePath", livePath],
    ["readyPath", readyPath],
  ] as const) {
    if (typeof path !== "string" || !path.startsWith("/") || path.includes("?"))
      fail(`health.${key}`, path, 'a path starting with "/" (no query)');
  }
  if (livePath === readyPath)
    fail("health.readyPath", readyPath, `a path other than health.livePath (${JSON.stringify(livePath)})`);
  if (value.ready !== undefined && typeof value.ready !== "function")
    fail("health.ready", value.ready, "a function () => boolean | Promise<boolean>");
  return Object.freeze({
    livePath: livePath as string,
    readyPath: readyPath as string,
    ready: value.ready as (() => boolean | Promise<boolean>) | undefined,
  });
}

function normalizeDrain(value: unknown): InboundConfig["drain"] {
  const d = INBOUND_DEFAULTS.drain;
  if (value === undefined) return Object.freeze({ ...d, deregister: [], signals: [] });
  if (!isPlainObject(value)) fail("drain", value, "{ graceMs?, delayMs?, deregister?, signals? }");
  checkKeys(value, ["graceMs", "delayMs", "deregister", "signals"], "drain");
  const graceMs = checkNumber(
    "drain.graceMs",
    value.graceMs,
    d.graceMs,
    (n) => n >= 0,
    "a non-negative number of milliseconds",
  );
  const delayMs = checkNumber(
    "drain.delayMs",
    value.delayMs,
    d.delayMs,
    (n) => n >= 0,
    "a non-negative number of milliseconds",
  );
  const deregister = value.deregister ?? [];
  if (!Array.isArray(deregister))
    fail("drain.deregister", deregister, "an array of registrations (anything with close())");
  deregister.forEach((r, i) => {
    if (typeof r !== "object" || r === null || typeof (r as { close?: unknown }).close !== "function")
      fail(`drain.deregister[${i}]`, r, "a registration with close(), e.g. from etcdRegistration()");
  });
  const signals = value.signals ?? [];
  if (!Array.isArray(signals)) fail("drain.signals", signals, 'an array of signal names such as ["SIGTERM"]');
  signals.forEach((s, i) => {
    if (typeof s !== "string" || !SIGNALS.has(s)) fail(`drain.signals[${i}]`, s, `one of ${[...SIGNALS].join(", ")}`);
  });
  return Object.freeze({
    graceMs,
    delayMs,
    // Both checked above, entry by entry.
    deregister: Object.freeze([...(deregister as InboundConfig["drain"]["deregister"])]),
    signals: Object.freeze([...(signals as readonly NodeJS.Signals[])]),
  });
}

function normalizeMetrics(value: unknown): InboundConfig["metrics"] {
  if (value === undefined || value === true) return Object.freeze({ meterProvider: undefined });
  if (value === false) return false;
  if (!isPlainObject(value)) fail("metrics", value, "true, false or { meterProvider }");
  checkKeys(value, ["meterProvider"], "metrics");
  const provider = value.meterProvider;
  if (
    provider !== undefined &&
    !(typeof provider === "object" && provider !== null && typeof (provider as MeterProvider).getMeter === "function")
  ) {
    fail("metrics.meterProvider", provider, "an OpenTelemetry MeterProvider (with getMeter)");
  }
  return Object.freeze({ meterProvider: provider as MeterProvider | undefined });
}

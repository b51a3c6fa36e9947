/**
 * Client options: one `DEFAULTS`, normalized once into a frozen config. The caller's object is
 * never written to (opossum writes into the options you pass: weft does not).
 */
import { p2cEwma } from "../balance/p2c-ewma.js";
import type { Balancer } from "../balance/picker.js";
import type { Classifier } from "../core/classifier.js";
import { defaultClassifier } from "../core/classifier.js";
import type { Clock, Random } from "../core/clock.js";
import { systemClock, systemRandom } from "../core/clock.js";
import type { Discovery } from "../core/discovery.js";
import type { Stack } from "../core/stack.js";
import type { TransportFactory } from "../core/transport.js";
import type { Middleware } from "../core/types.js";
import { undiciTransport } from "../transport/undici.js";
import type { TlsOptions } from "../transport/tls.js";
import type { RetryBudgetConfig } from "../retry/budget.js";
import type { HedgeConfig } from "../retry/hedge.js";
import {
  normalizeHedgeOptions,
  normalizeRetryOptions,
  type HedgeOptions,
  type RetryOptions,
} from "../retry/options.js";
import type { RetryConfig } from "../retry/policy.js";
import type { Fallback } from "../limit/fallback.js";
import { normalizeConcurrencyOptions, normalizeRateLimitOptions } from "../limit/options.js";
import { normalizeZoneOptions, type ZoneAwareConfig, type ZoneAwareOptions } from "../balance/zone.js";
import { normalizeBreakerOptions, type BreakerConfig, type BreakerOptions } from "../health/breaker-options.js";
import { normalizeOutlierOptions, type OutlierConfig, type OutlierOptions } from "../health/outlier-options.js";
import { normalizeSlowStartOptions, type SlowStartConfig, type SlowStartOptions } from "../health/slow-start.js";
import {
  normalizeHealthCheckOptions,
  type HealthCheckConfig,
  type HealthCheckOptions,
} from "../health/health-check-options.js";
import type { ConcurrencyConfig, ConcurrencyOptions, RateLimitConfig, RateLimitOptions } from "../limit/options.js";
import type { CoalesceKey } from "../limit/coalesce.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import type { MeterProvider } from "../telemetry/index.js";

export interface TimeoutOptions {
  /** Bound on one attempt (until response headers), ms. Default: none (the total deadline bounds it). */
  readonly attemptMs?: number | false;
  /** Bound on the whole call, ms. Default 15 000 (Envoy's route timeout). */
  readonly totalMs?: number | false;
  /** Header carrying each attempt's remaining time (ms) to the server. Default `"x-weft-timeout-ms"`; `false`: not sent. */
  readonly header?: string | false;
}

export interface ClientOptions {
  /** The logical service name: in spans, events, snapshots and errors. */
  readonly service: string;
  /** Where endpoints come from, e.g. `staticDiscovery([...])`. */
  readonly discovery: Discovery;
  /** Default `p2cEwma()`. */
  readonly balancer?: Balancer;
  /** Default `undiciTransport()`. */
  readonly transport?: TransportFactory;
  /**
   * TLS to this service's `https://` endpoints — the trust bundle, a client certificate, the
   * SPIFFE identity its servers must present (`identity`), rotation (`source: tlsFiles(…)`):
   * shorthand for `transport: undiciTransport({ tls })`, a transport of this client's own.
   */
  readonly tls?: TlsOptions;
  /** Default `{ totalMs: 15_000 }`; `false` turns both off. */
  readonly timeout?: TimeoutOptions | false;
  /**
   * Resends what the classifier calls retryable, within a budget. Default
   * `{ maxAttempts: 3, backoff: { baseMs: 25, maxMs: 1000 }, budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 } }`;
   * `false`: one attempt per call.
   */
  readonly retry?: RetryOptions | false;
  /** Backup requests for idempotent calls: `{ delayMs }` or `{ percentile: 95 }`, `maxHedges: 1`. Off unless set. */
  readonly hedge?: HedgeOptions | false;
  /**
   * One circuit breaker per endpoint. Default `{ errorThresholdPercentage: 50, resetTimeoutMs: 5000,
   * volumeThreshold: 10, rollingWindowMs: 10_000, halfOpenProbes: 1 }`; `false`: none.
   */
  readonly breaker?: BreakerOptions | false;
  /**
   * Locality-aware routing (Envoy's): `{ zone }` prefers endpoints whose discovery zone is this
   * one while at least 70 % of them are available and they are not saturated. Off unless set.
   */
  readonly zoneAware?: ZoneAwareOptions | false;
  /**
   * Envoy's outlier detection: eject after 5 consecutive failures or a success rate 1.9 σ below
   * the others; 30 s × times ejected (max 300 s); at most 10 % ejected. `false`: off.
   */
  readonly outlier?: OutlierOptions | false;
  /** A new or returning endpoint ramps from 10 % to its full share over 30 s. `false`: off. */
  readonly slowStart?: SlowStartOptions | false;
  /** Active health checks: `{ path, intervalMs: 10_000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 }`. Off unless set. */
  readonly healthCheck?: HealthCheckOptions | false;
  /**
   * Envoy's panic threshold, percent: with fewer endpoints available than this, balance across
   * all of them rather than melting the survivors. Default 50; 0 turns it off.
   */
  readonly panicThresholdPercent?: number;
  /**
   * A bulkhead: `{ limit: 256, queue: 512 }` when set; `{ adaptive: true }` for a Gradient2
   * adaptive limit. Queued calls wait at most until their deadline. Off unless set.
   */
  readonly concurrency?: ConcurrencyOptions | false;
  /** A client-side token bucket: `{ perSecond, burst? }`. Off unless set. */
  readonly rateLimit?: RateLimitOptions | false;
  /** Answers a call that failed with an error (not an HTTP error status): `(req, error) => response`. */
  readonly fallback?: Fallback;
  /**
   * Identical GETs in flight at once share one request (`true`), or those with the same
   * `key(req)`. Off by default. Shared responses are buffered, not streamed.
   */
  readonly coalesce?: boolean | { readonly key: CoalesceKey };
  /** Decides success / retryable / failure / ignorable. Default: see `defaultClassifier`. */
  readonly classifier?: Classifier;
  /** Plain middleware run for every attempt, just above the attempt layer, in this order. */
  readonly use?: readonly Middleware[];
  /** Tracing through `@opentelemetry/api` when an SDK is registered. Default true. */
  readonly tracing?: boolean;
  /**
   * Metrics through the OpenTelemetry metrics API: on when a meter provider is registered globally
   * (before the client is made) or given here. Default true; `false` turns them off.
   */
  readonly metrics?: boolean | { readonly meterProvider?: MeterProvider };
  /** Edits the default stack: `stack => stack.insertAfter("balance", { role, layer })`. */
  readonly stack?: (stack: Stack) => Stack;
  /** Injected time. Default: the system clock. */
  readonly clock?: Clock;
  /** Injected randomness in [0, 1). Default `Math.random`. */
  readonly random?: Random;
}

/** Options shared by the clients of a mesh (everything but the service name). */
export type ClientDefaults = Partial<Omit<ClientOptions, "service">>;

export interface ClientConfig {
  readonly service: string;
  readonly discovery: Discovery;
  readonly balancer: Balancer;
  readonly transport: TransportFactory;
  /** ms; Infinity when off. */
  readonly attemptMs: number;
  /** ms; Infinity when off. */
  readonly totalMs: number;
  readonly deadlineHeader: string | false;
  readonly retry: RetryConfig | false;
  readonly budget: RetryBudgetConfig | false;
  readonly hedge: HedgeConfig | false;
  readonly breaker: BreakerConfig | false;
  readonly zoneAware: ZoneAwareConfig | undefined;
  readonly outlier: OutlierConfig | false;
  readonly slowStart: SlowStartConfig | false;
  readonly healthCheck: HealthCheckConfig | false;
  /** 0–1. */
  readonly panicThreshold: number;
  readonly concurrency: ConcurrencyConfig | false;
  readonly rateLimit: RateLimitConfig | false;
  readonly fallback: Fallback | undefined;
  /** The coalescing key, or false when off. */
  readonly coalesce: CoalesceKey | true | false;
  readonly classifier: Classifier;
  readonly use: readonly Middleware[];
  readonly tracing: boolean;
  /** False when off; otherwise the provider to use (undefined: the global one). */
  readonly metrics: false | { readonly meterProvider: MeterProvider | undefined };
  readonly stack: ((stack: Stack) => Stack) | undefined;
  readonly clock: Clock;
  readonly random: Random;
}

const KEYS = [
  "service",
  "discovery",
  "balancer",
  "transport",
  "tls",
  "timeout",
  "retry",
  "hedge",
  "breaker",
  "zoneAware",
  "outlier",
  "slowStart",
  "healthCheck",
  "panicThresholdPercent",
  "concurrency",
  "rateLimit",
  "fallback",
  "coalesce",
  "classifier",
  "use",
  "tracing",
  "metrics",
  "stack",
  "clock",
  "random",
] as const;

/** Policies the public surface names that this version does not have yet: a clear error beats a silent no-op. */
const LATER: Readonly<Record<string, string>> = {
  routes: "routing, traffic splitting and mirroring are not implemented yet",
};

/**
 * One description for every client that names no transport, so the clients of a mesh share one
 * undici transport — one keep-alive pool per origin — as the mesh promises.
 */
const DEFAULT_TRANSPORT = undiciTransport();

export const DEFAULTS = Object.freeze({
  timeout: Object.freeze({ attemptMs: false as const, totalMs: 15_000, header: "x-weft-timeout-ms" }),
  tracing: true,
});

/** Checks the options a mesh's clients share (no `service`). */
export function checkDefaults(defaults: unknown): ClientDefaults {
  if (defaults === undefined) return {};
  if (!isPlainObject(defaults)) fail("defaults", defaults, "an object of client options");
  checkKeys(
    defaults,
    KEYS.filter((k) => k !== "service"),
    "defaults",
    LATER,
  );
  checkParts(defaults, "defaults.");
  return defaults as ClientDefaults;
}

/** Merges mesh defaults under a client's options: objects one level deep, `use` concatenated. */
export function mergeOptions(defaults: ClientDefaults, options: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...defaults, ...options };
  const t1 = defaults.timeout;
  const t2 = options.timeout;
  if (isPlainObject(t1) && isPlainObject(t2)) merged.timeout = { ...t1, ...t2 };
  for (const key of ["retry", "breaker", "zoneAware", "outlier", "slowStart", "healthCheck"] as const) {
    const a = defaults[key];
    const b = options[key];
    if (isPlainObject(a) && isPlainObject(b)) merged[key] = { ...a, ...b };
  }
  if (Array.isArray(defaults.use) && Array.isArray(options.use))
    merged.use = [...defaults.use, ...(options.use as unknown[])];
  return merged;
}

export function normalizeOptions(options: unknown): ClientConfig {
  if (!isPlainObject(options)) fail("options", options, "an object with at least { service, discovery }");
  checkKeys(options, KEYS, "", LATER);
  const service = options.service;
  if (typeof service !== "string" || service.trim() === "")
    fail("service", service, "a non-empty string naming the service");
  if (options.discovery === undefined)
    fail("discovery", undefined, 'a discovery source, e.g. staticDiscovery(["http://127.0.0.1:8080"])');
  checkParts(options, "");
  const timeout = options.timeout as TimeoutOptions | false | undefined;
  const attemptMs = timeout === false ? false : (timeout?.attemptMs ?? DEFAULTS.timeout.attemptMs);
  const totalMs = timeout === false ? false : (timeout?.totalMs ?? DEFAULTS.timeout.totalMs);
  const deadlineHeader = timeout === false ? false : (timeout?.header ?? DEFAULTS.timeout.header);
  const { retry, budget } = normalizeRetryOptions(options.retry);
  const hedge = normalizeHedgeOptions(options.hedge);
  return Object.freeze({
    service,
    discovery: options.discovery as Discovery,
    balancer: (options.balancer as Balancer | undefined) ?? p2cEwma(),
    transport:
      (options.transport as TransportFactory | undefined) ??
      (options.tls === undefined ? DEFAULT_TRANSPORT : undiciTransport({ tls: options.tls as TlsOptions })),
    attemptMs: attemptMs === false ? Infinity : attemptMs,
    totalMs: totalMs === false ? Infinity : totalMs,
    deadlineHeader: deadlineHeader === false ? false : deadlineHeader.toLowerCase(),
    retry,
    budget,
    hedge,
    breaker: normalizeBreakerOptions(options.breaker),
    zoneAware: normalizeZoneOptions(options.zoneAware),
    outlier: normalizeOutlierOptions(options.outlier),
    slowStart: normalizeSlowStartOptions(options.slowStart),
    healthCheck: normalizeHealthCheckOptions(options.healthCheck),
    panicThreshold: ((options.panicThresholdPercent as number | undefined) ?? 50) / 100,
    concurrency: normalizeConcurrencyOptions(options.concurrency),
    rateLimit: normalizeRateLimitOptions(options.rateLimit),
    fallback: options.fallback as Fallback | undefined,
    coalesce:
      options.coalesce === undefined || options.coalesce === false
        ? false
        : options.coalesce === true
          ? true
          : (options.coalesce as { key: CoalesceKey }).key,
    classifier: (options.classifier as Classifier | undefined) ?? defaultClassifier,
    use: Object.freeze([...((options.use as Middleware[] | undefined) ?? [])]),
    tracing: (options.tracing as boolean | undefined) ?? DEFAULTS.tracing,
    metrics:
      options.metrics === false
        ? false
        : Object.freeze({
            meterProvider:
              typeof options.metrics === "object" && options.metrics !== null
                ? (options.metrics as { meterProvider?: MeterProvider }).meterProvider
                : undefined,
          }),
    stack: options.stack as ((stack: Stack) => Stack) | undefined,
    clock: (options.clock as Clock | undefined) ?? systemClock,
    random: (options.random as Random | undefined) ?? systemRandom,
  });
}

/** Type checks of each option present in `o` (shared by client options and mesh defaults). */
function checkParts(o: Record<string, unknown>, prefix: string): void {
  const at = (key: string): string => prefix + key;
  if (o.discovery !== undefined && !hasFunction(o.discovery, "create")) {
    fail(at("discovery"), o.discovery, "a discovery source such as staticDiscovery([...]), dnsDiscovery({...})");
  }
  if (o.balancer !== undefined && !hasFunction(o.balancer, "create"))
    fail(at("balancer"), o.balancer, "a balancer such as p2cEwma() or roundRobin()");
  if (o.transport !== undefined && !hasFunction(o.transport, "create")) {
    fail(at("transport"), o.transport, "a transport such as undiciTransport(), fetchTransport() or gotTransport(got)");
  }
  if (o.tls !== undefined && o.transport !== undefined) {
    fail(
      at("tls"),
      "(with transport)",
      "absent when `transport` is given: pass it to the transport instead, undiciTransport({ tls })",
    );
  }
  if (o.timeout !== undefined && o.timeout !== false) {
    if (!isPlainObject(o.timeout)) fail(at("timeout"), o.timeout, "{ attemptMs?, totalMs? } or false");
    checkKeys(o.timeout, ["attemptMs", "totalMs", "header"], at("timeout"));
    const header = o.timeout.header;
    if (
      header !== undefined &&
      header !== false &&
      !(typeof header === "string" && /^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(header))
    ) {
      fail(at("timeout.header"), header, 'an HTTP header name (e.g. "x-weft-timeout-ms") or false');
    }
    const attemptMs = checkMs(at("timeout.attemptMs"), o.timeout.attemptMs, true);
    const totalMs = checkMs(at("timeout.totalMs"), o.timeout.totalMs, true);
    if (typeof attemptMs === "number" && typeof totalMs === "number" && attemptMs > totalMs) {
      fail(at("timeout.attemptMs"), attemptMs, `at most timeout.totalMs (${totalMs})`);
    }
  }
  if (o.retry !== undefined) normalizeRetryOptions(o.retry);
  if (o.hedge !== undefined) normalizeHedgeOptions(o.hedge);
  if (o.breaker !== undefined) normalizeBreakerOptions(o.breaker, at("breaker"));
  if (o.zoneAware !== undefined) normalizeZoneOptions(o.zoneAware, at("zoneAware"));
  if (o.outlier !== undefined) normalizeOutlierOptions(o.outlier, at("outlier"));
  if (o.slowStart !== undefined) normalizeSlowStartOptions(o.slowStart, at("slowStart"));
  if (o.healthCheck !== undefined) normalizeHealthCheckOptions(o.healthCheck, at("healthCheck"));
  const panic = o.panicThresholdPercent;
  if (panic !== undefined && !(typeof panic === "number" && panic >= 0 && panic <= 100))
    fail(at("panicThresholdPercent"), panic, "a percentage from 0 (off) to 100");
  if (o.concurrency !== undefined) normalizeConcurrencyOptions(o.concurrency, at("concurrency"));
  if (o.rateLimit !== undefined) normalizeRateLimitOptions(o.rateLimit, at("rateLimit"));
  if (o.fallback !== undefined && typeof o.fallback !== "function")
    fail(at("fallback"), o.fallback, "a function (req, error) => response");
  if (o.coalesce !== undefined && typeof o.coalesce !== "boolean") {
    if (!isPlainObject(o.coalesce) || typeof o.coalesce.key !== "function")
      fail(at("coalesce"), o.coalesce, "true, false or { key: (req) => string }");
    checkKeys(o.coalesce, ["key"], at("coalesce"));
  }
  if (o.classifier !== undefined && typeof o.classifier !== "function")
    fail(at("classifier"), o.classifier, "a function (req, res, error) => outcome");
  if (o.use !== undefined) {
    if (!Array.isArray(o.use))
      fail(at("use"), o.use, "an array of middleware functions (req, next) => Promise<response>");
    o.use.forEach((m, i) => {
      if (typeof m !== "function") fail(at(`use[${i}]`), m, "a middleware function (req, next) => Promise<response>");
    });
  }
  if (o.tracing !== undefined && typeof o.tracing !== "boolean") fail(at("tracing"), o.tracing, "true or false");
  if (o.metrics !== undefined && typeof o.metrics !== "boolean") {
    if (!isPlainObject(o.metrics)) fail(at("metrics"), o.metrics, "true, false or { meterProvider }");
    checkKeys(o.metrics, ["meterProvider"], at("metrics"));
    const provider = o.metrics.meterProvider;
    if (provider !== undefined && !hasFunction(provider, "getMeter"))
      fail(at("metrics.meterProvider"), provider, "an OpenTelemetry MeterProvider (with getMeter)");
  }
  if (o.stack !== undefined && typeof o.stack !== "function") fail(at("stack"), o.stack, "a function (stack) => stack");
  if (
    o.clock !== undefined &&
    !(hasFunction(o.clock, "now") && hasFunction(o.clock, "setTimer") && hasFunction(o.clock, "wallNow"))
  ) {
    fail(at("clock"), o.clock, "a Clock { now(), wallNow(), setTimer(fn, ms) }, e.g. fakeClock() from weft/testing");
  }
  if (o.random !== undefined && typeof o.random !== "function")
    fail(at("random"), o.random, "a function returning numbers in [0, 1)");
}

function hasFunction(value: unknown, name: string): boolean {
  return typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[name] === "function";
}

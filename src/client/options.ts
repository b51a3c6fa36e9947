/**
 * Client options, normalized once into a frozen config. The caller's object is never written to
 * (opossum writes into the options you pass: weft does not). The option keys, their validation
 * (one pass, one normaliser per key) and how a mesh's defaults merge under a client's options all
 * derive from the stack plan (`plan.ts`), beside the few options that belong to the client itself
 * (service, discovery, transport, classifier, clock…).
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
import { normalizeRetryOptions, type HedgeOptions, type RetryOptions } from "../retry/options.js";
import type { RetryConfig } from "../retry/policy.js";
import type { Fallback } from "../limit/fallback.js";
import { type ZoneAwareConfig, type ZoneAwareOptions } from "../balance/zone.js";
import { type BreakerConfig, type BreakerOptions } from "../health/breaker-options.js";
import { type OutlierConfig, type OutlierOptions } from "../health/outlier-options.js";
import { type SlowStartConfig, type SlowStartOptions } from "../health/slow-start.js";
import { type HealthCheckConfig, type HealthCheckOptions } from "../health/health-check-options.js";
import type { ConcurrencyConfig, ConcurrencyOptions, RateLimitConfig, RateLimitOptions } from "../limit/options.js";
import type { CoalesceKey } from "../limit/coalesce.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import { hasFunction, planOptions, STACK_PLAN, type OptionRule, type PlanEntry } from "./plan.js";
import type { TimeoutConfig } from "./policy-rules.js";
import type { MeterProvider } from "../telemetry/index.js";
import type { ConfigSource } from "../core/config-source.js";
import type { RouteOptionsBase } from "../route/options.js";

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
  /**
   * Routes, tried in order (the first match wins): what each matches (method, path, headers,
   * query), where it sends (a weighted split over endpoint subsets or other services of the mesh,
   * sticky by a header or cookie), what it mirrors and which faults it injects, and the client
   * policies it overrides (`timeout`, `retry`, `hedge`, `idempotent`, `classifier`). A call no
   * route takes goes as if there were none. See docs/routing.md.
   * @example routes: [{ match: { headers: { "x-canary": "1" } }, backends: [{ subset: { version: "v2" } }] },
   *                   { backends: [{ subset: { version: "v1" }, weight: 90 }, { subset: { version: "v2" }, weight: 10 }] }]
   */
  readonly routes?: readonly RouteOptions[];
  /**
   * Routes and policy overrides read at run time from a file or etcd (`fileConfig(…)`,
   * `etcdConfig(…)`): each new version is checked by the same rules as these options and applied
   * between calls, or rejected with a warning while the last good version serves. Its routes,
   * when it has any, replace `routes`.
   */
  readonly configSource?: ConfigSource;
  /** Edits the default stack: `stack => stack.insertAfter("balance", { role, layer })`. */
  readonly stack?: (stack: Stack) => Stack;
  /** Injected time. Default: the system clock. */
  readonly clock?: Clock;
  /** Injected randomness in [0, 1). Default `Math.random`. */
  readonly random?: Random;
}

/** A route: `RouteOptionsBase` (match, backends, sticky, mirror, fault, idempotent, classifier) and the client policies it overrides. */
export interface RouteOptions extends RouteOptionsBase {
  /** The route's timeouts, over the client's (a call's own still win); `false` turns them off for the route. */
  readonly timeout?: Omit<TimeoutOptions, "header"> | false;
  /** The route's retry policy, over the client's; the retry budget stays the client's. `false`: one attempt. */
  readonly retry?: Omit<RetryOptions, "budget"> | false;
  /** The route's hedging, over the client's; `false`: none. */
  readonly hedge?: HedgeOptions | false;
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
  /** Every option's normalized value by key, as the plan's entries own them (a new policy reads its own here). */
  readonly options: Readonly<Record<string, unknown>>;
  /** The options as given (after the mesh's defaults merged under them): what a route's overrides merge over. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/**
 * One description for every client that names no transport, so the clients of a mesh share one
 * undici transport — one keep-alive pool per origin — as the mesh promises.
 */
const DEFAULT_TRANSPORT = undiciTransport();

const ANY: OptionRule["normalize"] = (value) => value;

/** The options that belong to the client itself rather than to one entry of the plan (`policy()` reuses `clock` and `random`). */
export const CLIENT_OPTIONS: Readonly<Record<string, OptionRule>> = {
  service: {
    merge: "replace",
    normalize: (value, at) => {
      if (typeof value !== "string" || value.trim() === "") fail(at, value, "a non-empty string naming the service");
      return value;
    },
  },
  discovery: {
    merge: "replace",
    normalize: (value, at) => {
      if (value === undefined)
        fail(at, undefined, 'a discovery source, e.g. staticDiscovery(["http://127.0.0.1:8080"])');
      if (!hasFunction(value, "create")) {
        fail(at, value, "a discovery source such as staticDiscovery([...]), dnsDiscovery({...})");
      }
      return value;
    },
  },
  transport: {
    merge: "replace",
    normalize: (value, at) => {
      if (value !== undefined && !hasFunction(value, "create")) {
        fail(at, value, "a transport such as undiciTransport(), fetchTransport() or gotTransport(got)");
      }
      return value;
    },
  },
  tls: { merge: "replace", normalize: ANY },
  classifier: {
    merge: "replace",
    normalize: (value, at) => {
      if (value !== undefined && typeof value !== "function")
        fail(at, value, "a function (req, res, error) => outcome");
      return value ?? defaultClassifier;
    },
  },
  stack: {
    merge: "replace",
    normalize: (value, at) => {
      if (value !== undefined && typeof value !== "function") fail(at, value, "a function (stack) => stack");
      return value;
    },
  },
  clock: {
    merge: "replace",
    normalize: (value, at) => {
      if (
        value !== undefined &&
        !(hasFunction(value, "now") && hasFunction(value, "setTimer") && hasFunction(value, "wallNow"))
      ) {
        fail(at, value, "a Clock { now(), wallNow(), setTimer(fn, ms) }, e.g. fakeClock() from weft/testing");
      }
      return value ?? systemClock;
    },
  },
  random: {
    merge: "replace",
    normalize: (value, at) => {
      if (value !== undefined && typeof value !== "function") fail(at, value, "a function returning numbers in [0, 1)");
      return value ?? systemRandom;
    },
  },
};

/** Every option's rule, the client's own first, then the plan's in request order. */
function rulesOf(plan: readonly PlanEntry[]): ReadonlyMap<string, OptionRule> {
  const rules = new Map(Object.entries(CLIENT_OPTIONS));
  for (const [key, rule] of planOptions(plan)) {
    if (rules.has(key)) throw new Error(`stack plan: option "${key}" belongs to the client itself`);
    rules.set(key, rule);
  }
  return rules;
}

const DEFAULT_RULES = rulesOf(STACK_PLAN);

/** The option keys a client takes with this plan. */
export function optionKeys(plan: readonly PlanEntry[] = STACK_PLAN): string[] {
  return [...(plan === STACK_PLAN ? DEFAULT_RULES : rulesOf(plan)).keys()];
}

/** Checks the options a mesh's clients share (no `service`): each present one through its rule. */
export function checkDefaults(defaults: unknown, plan: readonly PlanEntry[] = STACK_PLAN): ClientDefaults {
  if (defaults === undefined) return {};
  if (!isPlainObject(defaults)) fail("defaults", defaults, "an object of client options");
  const rules = plan === STACK_PLAN ? DEFAULT_RULES : rulesOf(plan);
  const keys = [...rules.keys()].filter((k) => k !== "service");
  checkKeys(defaults, keys, "defaults");
  for (const key of keys)
    if (defaults[key] !== undefined) (rules.get(key) as OptionRule).normalize(defaults[key], `defaults.${key}`);
  checkTls(defaults, "defaults.");
  return defaults;
}

/** Merges mesh defaults under a client's options, each key by its rule: objects one level deep, arrays concatenated. */
export function mergeOptions(
  defaults: ClientDefaults,
  options: Record<string, unknown>,
  plan: readonly PlanEntry[] = STACK_PLAN,
): Record<string, unknown> {
  const rules = plan === STACK_PLAN ? DEFAULT_RULES : rulesOf(plan);
  const base = defaults as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...base, ...options };
  for (const [key, rule] of rules) {
    const a = base[key];
    const b = options[key];
    if (rule.merge === "shallow" && isPlainObject(a) && isPlainObject(b)) merged[key] = { ...a, ...b };
    else if (rule.merge === "concat" && Array.isArray(a) && Array.isArray(b))
      merged[key] = [...(a as unknown[]), ...(b as unknown[])];
  }
  return merged;
}

/** Validates and normalizes client options in one pass (one normaliser per key) into a frozen config. */
export function normalizeOptions(options: unknown, plan: readonly PlanEntry[] = STACK_PLAN): ClientConfig {
  if (!isPlainObject(options)) fail("options", options, "an object with at least { service, discovery }");
  const rules = plan === STACK_PLAN ? DEFAULT_RULES : rulesOf(plan);
  checkKeys(options, [...rules.keys()], "");
  const n: Record<string, unknown> = {};
  for (const [key, rule] of rules) n[key] = rule.normalize(options[key], key);
  checkTls(options, "");
  const timeout = n.timeout as TimeoutConfig;
  const { retry, budget } = n.retry as ReturnType<typeof normalizeRetryOptions>;
  return Object.freeze({
    service: n.service as string,
    discovery: n.discovery as Discovery,
    balancer: (n.balancer as Balancer | undefined) ?? p2cEwma(),
    transport:
      (n.transport as TransportFactory | undefined) ??
      (options.tls === undefined ? DEFAULT_TRANSPORT : undiciTransport({ tls: options.tls as TlsOptions })),
    attemptMs: timeout.attemptMs,
    totalMs: timeout.totalMs,
    deadlineHeader: timeout.header,
    retry,
    budget,
    hedge: n.hedge as HedgeConfig | false,
    breaker: n.breaker as BreakerConfig | false,
    zoneAware: n.zoneAware as ZoneAwareConfig | undefined,
    outlier: n.outlier as OutlierConfig | false,
    slowStart: n.slowStart as SlowStartConfig | false,
    healthCheck: n.healthCheck as HealthCheckConfig | false,
    panicThreshold: n.panicThresholdPercent as number,
    concurrency: n.concurrency as ConcurrencyConfig | false,
    rateLimit: n.rateLimit as RateLimitConfig | false,
    fallback: n.fallback as Fallback | undefined,
    coalesce: n.coalesce as CoalesceKey | true | false,
    classifier: n.classifier as Classifier,
    use: n.use as readonly Middleware[],
    tracing: n.tracing as boolean,
    metrics: n.metrics as false | { readonly meterProvider: MeterProvider | undefined },
    stack: n.stack as ((stack: Stack) => Stack) | undefined,
    clock: n.clock as Clock,
    random: n.random as Random,
    options: Object.freeze(n),
    raw: Object.freeze({ ...options }),
  });
}

/** `tls` is shorthand for a transport of the client's own: it cannot come with `transport`. */
function checkTls(o: Record<string, unknown>, prefix: string): void {
  if (o.tls !== undefined && o.transport !== undefined) {
    fail(
      `${prefix}tls`,
      "(with transport)",
      "absent when `transport` is given: pass it to the transport instead, undiciTransport({ tls })",
    );
  }
}

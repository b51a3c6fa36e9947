/**
 * The stack plan: one array, in request order (first = outermost), of everything a client is
 * built from — each entry its role, the options it owns with their normaliser and merge rule, its
 * builder, and why it sits where it does (Finagle's `Stack.Module` with its `Param.default`;
 * Tower's `ServiceBuilder` order). The client's constructor, `snapshot()`, `close()` and endpoint
 * updates are loops over it; the option keys, their single-pass validation and the mesh's merge
 * rule derive from it (`options.ts`); docs/architecture.md's table is tested against it.
 *
 * An entry's builder returns one handle shape: the `layers` it adds at its place (none for a part
 * such as outlier detection, which learns from `balance`), and optionally a `snapshot` section, a
 * per-endpoint `describe`, an availability `gate`, `setEndpoints` to follow discovery, an
 * outcome `observe`r for `balance`, and `close`. Adding a policy is its folder plus one entry here.
 */
import { balanceLayer } from "../balance/layer.js";
import { DEFAULT_LOAD_OPTIONS, LoadTracker } from "../balance/load.js";
import { normalizeZoneOptions } from "../balance/zone.js";
import type { CallStats } from "../core/call-stats.js";
import type { Classifier, Outcome } from "../core/classifier.js";
import type { Clock, Random } from "../core/clock.js";
import { attemptLayer } from "../core/attempt.js";
import { deadlineLayer } from "../core/deadline.js";
import type { AvailabilityGate, Endpoint, EndpointSet } from "../core/endpoint.js";
import type { ClientEventHub } from "../core/events.js";
import { LatencyWindow } from "../core/latency.js";
import { middlewareLayer } from "../core/stack.js";
import type { Transport } from "../core/transport.js";
import type { Layer, Middleware, Service } from "../core/types.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import { breakerLayer } from "../health/breaker.js";
import { normalizeBreakerOptions } from "../health/breaker-options.js";
import { HealthChecker, type HealthCheckProbe } from "../health/health-check.js";
import { normalizeHealthCheckOptions } from "../health/health-check-options.js";
import { OutlierDetector } from "../health/outlier.js";
import { normalizeOutlierOptions } from "../health/outlier-options.js";
import { normalizeSlowStartOptions, slowStartWeigher } from "../health/slow-start.js";
import { coalesceLayer } from "../limit/coalesce.js";
import { concurrencyLayer } from "../limit/concurrency.js";
import { fallbackLayer } from "../limit/fallback.js";
import { normalizeConcurrencyOptions, normalizeRateLimitOptions } from "../limit/options.js";
import { rateLimitLayer } from "../limit/rate-limit.js";
import { RetryBudget } from "../retry/budget.js";
import { retryLayer } from "../retry/layer.js";
import { attemptSpanLayer } from "../telemetry/attempt-span.js";
import { callSpanLayer } from "../telemetry/call-span.js";
import { clientMetrics, type MetricsSnapshot } from "../telemetry/metrics.js";
import type { MeterProvider } from "../telemetry/index.js";
import type { EndpointSnapshot } from "./client.js";
import { observeLayer, type CallCounters } from "./observe.js";
import type { ClientConfig } from "./options.js";
import { HEDGE_RULE, RETRY_RULE, TIMEOUT_RULE } from "./policy-rules.js";
import { checkRoutes, routed, routingPart } from "./routing.js";

/**
 * How a mesh's default for an option and a client's own value combine: the client's replaces the
 * default (`replace`), objects merge one level deep (`shallow`), arrays concatenate (`concat`).
 */
export type MergeRule = "replace" | "shallow" | "concat";

/** One option: its normaliser (validates and returns the frozen config value) and merge rule. */
export interface OptionRule {
  /**
   * Validates `value` (undefined: the option is absent) and returns what the builders read.
   * Throws `InvalidOptionsError` naming `at` (the option's path: `"breaker"`, `"defaults.breaker"`).
   */
  normalize(value: unknown, at: string): unknown;
  readonly merge: MergeRule;
}

/** What a builder is given: the client's config and shared parts, and the handles built before it. */
export interface BuildContext {
  readonly config: ClientConfig;
  readonly service: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly classifier: Classifier;
  readonly events: ClientEventHub;
  readonly endpoints: EndpointSet;
  readonly transport: Transport;
  readonly counters: CallCounters;
  readonly stats: CallStats;
  /** Discovery's first answer while it is pending, else null (the balance layer waits on it). */
  readonly firstAnswer: () => Promise<void> | null;
  /** Tells the endpoint set that a gate changed its answer: it asks every gate again. */
  readonly changed: () => void;
  /** One health check straight to the transport, outside the stack. */
  readonly probe: (endpoint: Endpoint, probe: HealthCheckProbe) => Promise<number>;
  /** The client's snapshot (for metrics, which read it per collection). */
  readonly snapshot: () => MetricsSnapshot;
  /** The handle an earlier entry built for `role`, if it built one. */
  built(role: string): PlanHandle | undefined;
  /**
   * Another client of the mesh by service name, entered at the top of its stack (a route's
   * service backend); undefined when the mesh has no such client.
   */
  readonly peer: (service: string) => Service | undefined;
  /**
   * This client's stack from the first layer with `role` down to the transport, as built (with
   * `options.stack`'s edits); the whole stack when no layer has that role. Only after construction.
   */
  readonly stackFrom: (role: string) => Service;
  /** Reports a rejected input (a config version) or a failing source; the mesh's `onWarning`. */
  readonly warn: (message: string) => void;
}

/** What one entry's builder returns. Every member is optional; `null` from `build` means "off". */
export interface PlanHandle {
  /** The layers this entry adds at its place, in request order (several for `use`). */
  readonly layers?: readonly Layer[];
  /** This entry's section of the client's snapshot, put under the entry's `snapshotKey`. */
  snapshot?(nowMs: number): unknown;
  /** This entry's columns of one endpoint's row in the snapshot. */
  describe?(endpoint: Endpoint, nowMs: number): Partial<EndpointSnapshot>;
  /** A policy that can hold endpoints out of the ready list. */
  readonly gate?: AvailabilityGate;
  /** Follows discovery: the whole set after an update, and who joined and left. */
  setEndpoints?(all: readonly Endpoint[], added: readonly Endpoint[], removed: readonly Endpoint[]): void;
  /** Receives each attempt's classified outcome from `balance`; returns the ejection count when it ejected the endpoint, else 0. */
  observe?(endpoint: Endpoint, outcome: Outcome): number;
  /** Releases what it holds (timers, breakers, subscriptions, watches) when the client closes. */
  close?(): void | Promise<void>;
}

export interface PlanEntry {
  /** The stack role of its layers (`client.stack.roles`), or the part's name. */
  readonly role: string;
  /** Why it sits here — docs/architecture.md's table says the same (tested). */
  readonly why: string;
  /** The client options this entry owns (each key is owned by one entry, or by the client itself). */
  readonly options?: Readonly<Record<string, OptionRule>>;
  /** Where its `snapshot()` section goes in the client's snapshot (`"outlier"`, `"limits.concurrency"`). */
  readonly snapshotKey?: string;
  build(ctx: BuildContext): PlanHandle | null;
}

const ENTRIES: PlanEntry[] = [
  {
    role: "fallback",
    why: "answers only once everything below has given up; the counters below it still see the real failure",
    options: {
      fallback: {
        merge: "replace",
        normalize: (value, at) => {
          if (value !== undefined && typeof value !== "function")
            fail(at, value, "a function (req, error) => response");
          return value;
        },
      },
    },
    build: ({ config }) => (config.fallback === undefined ? null : { layers: [fallbackLayer(config.fallback)] }),
  },
  {
    role: "observe",
    why: "counts each call exactly once, with the outcome and latency the caller gets",
    build: ({ service, counters, stats, classifier, clock, events }) => ({
      layers: [observeLayer(service, counters, stats, classifier, clock, events)],
    }),
  },
  {
    role: "trace",
    why: "the logical span covers the deadline and every attempt, so attempt spans are its children",
    options: {
      tracing: {
        merge: "replace",
        normalize: (value, at) => {
          if (value !== undefined && typeof value !== "boolean") fail(at, value, "true or false");
          return value ?? true;
        },
      },
    },
    build: ({ config }) => (config.tracing ? { layers: [callSpanLayer()] } : null),
  },
  {
    role: "route",
    why: "a route's timeout and retry policy must be known before deadline and retry run; a split is decided once per call (its retries stay on the backend it chose); an injected abort is what the caller sees, counted by observe and never retried",
    options: {
      routes: { merge: "replace", normalize: checkRoutes },
      configSource: {
        merge: "replace",
        normalize: (value, at) => {
          if (value !== undefined && !hasFunction(value, "watch"))
            fail(at, value, 'a config source such as fileConfig("/etc/weft/{service}.yaml") or etcdConfig({ hosts })');
          return value;
        },
      },
    },
    snapshotKey: "routing",
    build: (ctx) => (routed(ctx.config) ? routingPart(ctx) : null),
  },
  {
    role: "coalesce",
    why: "a GET that joins one in flight takes no slot, no token and no attempt of its own",
    options: { coalesce: { merge: "replace", normalize: normalizeCoalesce } },
    build: ({ config }) =>
      config.coalesce === false
        ? null
        : { layers: [coalesceLayer(config.coalesce === true ? undefined : config.coalesce)] },
  },
  {
    role: "deadline",
    why: "the total budget bounds everything below it: queueing for a slot or a token, every attempt, every backoff and Retry-After wait",
    options: { timeout: TIMEOUT_RULE },
    build: ({ clock, events, config }) => ({ layers: [deadlineLayer({ clock, events, totalMs: config.totalMs })] }),
  },
  {
    role: "rate-limit",
    why: "a token wait ends at the deadline; a call waiting for a token holds no concurrency slot; it counts calls, not attempts (the budget bounds retries)",
    options: { rateLimit: { merge: "shallow", normalize: (v, at) => normalizeRateLimitOptions(v, at) } },
    snapshotKey: "limits.rateLimit",
    build: ({ service, config, clock, events }) => {
      if (config.rateLimit === false) return null;
      const limiter = rateLimitLayer({ service, config: config.rateLimit, clock, events });
      return { layers: [limiter.layer], snapshot: () => limiter.snapshot() };
    },
  },
  {
    role: "concurrency",
    why: "queueing ends at the deadline; one call holds one slot across all its attempts",
    options: { concurrency: { merge: "shallow", normalize: (v, at) => normalizeConcurrencyOptions(v, at) } },
    snapshotKey: "limits.concurrency",
    build: ({ service, config, clock, classifier, events }) => {
      if (config.concurrency === false) return null;
      const limiter = concurrencyLayer({ service, config: config.concurrency, clock, classifier, events });
      return { layers: [limiter.layer], snapshot: () => limiter.snapshot() };
    },
  },
  {
    role: "retry",
    why: "each resend picks again, preferring an endpoint not yet tried; hedges are budgeted early retries",
    options: {
      retry: RETRY_RULE,
      hedge: HEDGE_RULE,
    },
    snapshotKey: "retryBudget",
    build: ({ service, config, clock, random, classifier, events }) => {
      // Neither retries nor hedges, nor routes that could turn them on: no layer (an attempt's
      // error is the call's), no budget.
      if (config.retry === false && config.hedge === false && !routed(config)) return { snapshot: () => null };
      const budget = config.budget === false ? null : new RetryBudget(config.budget);
      const layer = retryLayer({
        service,
        retry: config.retry,
        hedge: config.hedge,
        budget,
        latency: new LatencyWindow(),
        classifier,
        clock,
        random,
        events,
      });
      return { layers: [layer], snapshot: (now) => (budget === null ? null : round(budget.balance(now))) };
    },
  },
  {
    role: "outlier",
    why: "no layer: it learns from balance's classified outcomes and holds ejected endpoints out of the ready list (a gate)",
    options: { outlier: { merge: "shallow", normalize: (v, at) => normalizeOutlierOptions(v, at) } },
    snapshotKey: "outlier",
    build: ({ service, config, clock, events, changed }) => {
      if (config.outlier === false) return null;
      const detector = new OutlierDetector(config.outlier, clock, {
        onEject: (endpoint, reason, untilMs) => {
          changed();
          if (events.endpointHealth.active) {
            const ejectionMs = untilMs - clock.now();
            events.endpointHealth.emit({ service, endpoint: endpoint.url, kind: "ejected", reason, ejectionMs });
          }
        },
        onReturn: (endpoint) => {
          changed();
          if (events.endpointHealth.active)
            events.endpointHealth.emit({ service, endpoint: endpoint.url, kind: "returned" });
        },
      });
      return {
        gate: detector,
        observe: (endpoint, outcome) => detector.observe(endpoint, outcome),
        setEndpoints: (all) => detector.setEndpoints(all),
        snapshot: () => detector.snapshot(),
        describe: (endpoint, now) => {
          const record = detector.recordOf(endpoint);
          if (record === undefined) return {};
          const ejected = record.ejected && endpoint.state !== "draining";
          return {
            // Only while ejected: the row's state is otherwise the set's (healthy / draining).
            ...(ejected ? { state: "ejected" as const } : {}),
            ejections: record.ejections,
            ejectedForMs: ejected ? Math.max(0, round(record.ejectedUntil - now)) : null,
          };
        },
        close: () => detector.close(),
      };
    },
  },
  {
    role: "health-check",
    why: "no layer: probes every endpoint on its own timer and holds failing ones out of the ready list (a gate); a passing check ends an outlier ejection (Envoy's default)",
    options: { healthCheck: { merge: "shallow", normalize: (v, at) => normalizeHealthCheckOptions(v, at) } },
    snapshotKey: "healthCheck",
    build: ({ service, config, clock, random, events, changed, probe, built }) => {
      if (config.healthCheck === false) return null;
      const outlier = built("outlier")?.gate as OutlierDetector | undefined;
      const checker = new HealthChecker(config.healthCheck, {
        clock,
        random,
        send: probe,
        onChange: (endpoint, healthy) => {
          if (healthy) outlier?.uneject(endpoint);
          changed();
          if (events.endpointHealth.active) {
            events.endpointHealth.emit({ service, endpoint: endpoint.url, kind: healthy ? "healthy" : "unhealthy" });
          }
        },
      });
      return {
        gate: checker,
        setEndpoints: (all) => checker.setEndpoints(all),
        snapshot: () => checker.snapshot(),
        describe: (endpoint) => ({ activeHealthy: checker.isAvailable(endpoint) }),
        close: () => checker.close(),
      };
    },
  },
  {
    role: "balance",
    why: "picks per attempt; accounts in-flight and latency for the attempt it started",
    options: {
      balancer: {
        merge: "replace",
        normalize: (value, at) => {
          if (value !== undefined && !hasFunction(value, "create"))
            fail(at, value, "a balancer such as p2cEwma() or roundRobin()");
          return value;
        },
      },
      zoneAware: { merge: "shallow", normalize: (v, at) => normalizeZoneOptions(v, at) },
      slowStart: { merge: "shallow", normalize: (v, at) => normalizeSlowStartOptions(v, at) },
      panicThresholdPercent: {
        merge: "replace",
        normalize: (value, at) => {
          if (value !== undefined && !(typeof value === "number" && value >= 0 && value <= 100)) {
            fail(at, value, "a percentage from 0 (off) to 100");
          }
          return (value ?? 50) / 100;
        },
      },
    },
    build: ({ service, config, clock, random, classifier, events, endpoints, firstAnswer, built }) => {
      const load = new LoadTracker({
        ...DEFAULT_LOAD_OPTIONS,
        decayMs: config.balancer.decayMs ?? DEFAULT_LOAD_OPTIONS.decayMs,
      });
      endpoints.panicThreshold = config.panicThreshold;
      // An endpoint's weight now: its discovery weight times its slow-start ramp.
      const weightOf = slowStartWeigher(config.slowStart);
      const picker = config.balancer.create({ clock, random, load, weightOf });
      const observeOutcome = built("outlier")?.observe;
      const layer = balanceLayer({
        service,
        endpoints,
        picker,
        load,
        clock,
        classifier,
        events,
        observeOutcome,
        zoneAware: config.zoneAware,
        firstAnswer,
      });
      return {
        layers: [layer],
        describe: (endpoint, now) => ({
          latencyMs: round(load.latencyMs(endpoint, now)),
          effectiveWeight: round(weightOf(endpoint, now)),
        }),
      };
    },
  },
  {
    role: "breaker",
    why: "it needs the endpoint picked; a per-try timeout counts as a failure of that endpoint; an open breaker holds its endpoint out of balance's ready list (a gate panic mode does not override)",
    options: { breaker: { merge: "shallow", normalize: (v, at) => normalizeBreakerOptions(v, at) } },
    snapshotKey: "breaker",
    build: ({ service, config, classifier, clock, events, changed }) => {
      if (config.breaker === false) return null;
      const breakers = breakerLayer({
        service,
        config: config.breaker,
        classifier,
        clock,
        onStateChange: (endpoint, from, to) => {
          changed();
          if (events.breakerStateChange.active) {
            events.breakerStateChange.emit({ service, endpoint: endpoint.url, from, to });
          }
        },
      });
      return {
        layers: [breakers.layer],
        gate: breakers,
        snapshot: () => breakers.snapshot(),
        describe: (endpoint) => ({ breaker: breakers.stateOf(endpoint) }),
        // A removed endpoint drains: no new picks; its breaker goes with it.
        setEndpoints: (_all, _added, removed) => {
          for (const endpoint of removed) breakers.forget(endpoint);
        },
        close: () => breakers.close(),
      };
    },
  },
  {
    role: "use",
    why: "user middleware runs once per attempt and sees the endpoint picked",
    options: { use: { merge: "concat", normalize: normalizeUse } },
    build: ({ config }) =>
      config.use.length === 0 ? null : { layers: config.use.map((middleware) => middlewareLayer(middleware)) },
  },
  {
    role: "attempt",
    why: "a per-try timeout counts against the endpoint's load; the remaining time goes out in the deadline header",
    build: ({ clock, events, config }) => ({
      layers: [attemptLayer({ clock, events, attemptMs: config.attemptMs, header: config.deadlineHeader })],
    }),
  },
  {
    role: "attempt-trace",
    why: "the span measures wire time only; its traceparent is injected last, so middleware cannot overwrite it",
    build: ({ config, transport }) =>
      config.tracing ? { layers: [attemptSpanLayer(() => transport.instrumented?.() === true)] } : null,
  },
  {
    role: "metrics",
    why: "no layer: OpenTelemetry metrics from the events and one snapshot per collection, only when a meter provider is there (none, no work)",
    options: {
      metrics: {
        merge: "shallow",
        normalize: (value, at) => {
          if (value !== undefined && typeof value !== "boolean") {
            if (!isPlainObject(value)) fail(at, value, "true, false or { meterProvider }");
            checkKeys(value, ["meterProvider"], at);
            const provider = value.meterProvider;
            if (provider !== undefined && !hasFunction(provider, "getMeter")) {
              fail(`${at}.meterProvider`, provider, "an OpenTelemetry MeterProvider (with getMeter)");
            }
          }
          if (value === false) return false;
          const meterProvider = isPlainObject(value) ? (value.meterProvider as MeterProvider | undefined) : undefined;
          return Object.freeze({ meterProvider });
        },
      },
    },
    build: ({ service, config, events, snapshot }) => {
      if (config.metrics === false) return null;
      const stop = clientMetrics({
        service,
        events: events.api,
        snapshot,
        meterProvider: config.metrics.meterProvider,
        // grpcClient's transport: its attempts are RPCs (the RPC conventions' histogram).
        attempts: config.transport.name === "grpc" ? "rpc" : "http",
      });
      return stop === null ? null : { close: stop };
    },
  },
];

/** The default plan, in request order. */
export const STACK_PLAN: readonly PlanEntry[] = Object.freeze(ENTRIES);

function normalizeCoalesce(value: unknown, at: string): unknown {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  if (!isPlainObject(value) || typeof value.key !== "function")
    fail(at, value, "true, false or { key: (req) => string }");
  checkKeys(value, ["key"], at);
  return value.key;
}

function normalizeUse(value: unknown, at: string): readonly Middleware[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value)) fail(at, value, "an array of middleware functions (req, next) => Promise<response>");
  value.forEach((m, i) => {
    if (typeof m !== "function") fail(`${at}[${i}]`, m, "a middleware function (req, next) => Promise<response>");
  });
  return Object.freeze([...(value as Middleware[])]);
}

export function hasFunction(value: unknown, name: string): boolean {
  return typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[name] === "function";
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** The plan's option rules by key, in plan order. Throws when two entries claim one key. */
export function planOptions(plan: readonly PlanEntry[]): ReadonlyMap<string, OptionRule> {
  const rules = new Map<string, OptionRule>();
  for (const entry of plan) {
    for (const [key, rule] of Object.entries(entry.options ?? {})) {
      if (rules.has(key))
        throw new Error(`stack plan: option "${key}" is claimed by two entries (the second: "${entry.role}")`);
      rules.set(key, rule);
    }
  }
  return rules;
}

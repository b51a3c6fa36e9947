/**
 * Metrics through `@opentelemetry/api` only: each attempt is one histogram record, weft's rarer
 * decisions (retries, hedges, breaker changes) are counted as they happen, and the client's own
 * counters and state (`snapshot()`) are observed once per collection. The application's SDK (if
 * any) aggregates and exports; weft never picks an exporter.
 *
 * Zero work without a meter provider: events build their objects only when someone listens, so a
 * listener costs every call. `clientMetrics` therefore looks at the provider first and, when it is
 * the API's no-op one, subscribes to nothing, makes no instrument and returns null.
 *
 * Unlike traces, the metrics API has no proxy provider: a meter taken before the SDK registers
 * stays a no-op for good. The provider is read when the client is made, so register the SDK
 * first (as every OpenTelemetry instrumentation asks), or pass `meterProvider`.
 */
import { createNoopMeter, metrics, type Attributes, type Meter, type MeterProvider } from "@opentelemetry/api";
import type { AttemptEndEvent, ClientEvents } from "../core/events.js";
import type { Disposer } from "../core/types.js";
import {
  instrumentsFor,
  metricMethod,
  serverAttributes,
  METER_NAME,
  METER_VERSION,
  type WeftInstruments,
} from "./metrics-instruments.js";
import { observerFor, type MetricsSnapshot } from "./metrics-observe.js";
import {
  rpcAttributes,
  rpcConventions,
  rpcOfPath,
  rpcStatusAttributes,
  rpcStatusCode,
  type RpcConventions,
} from "./rpc.js";
import { errorType } from "./tracing.js";

export type { MetricsSnapshot } from "./metrics-observe.js";

export interface ClientMetricsOptions {
  readonly service: string;
  /** The client's subscription surface (`client.events`). */
  readonly events: ClientEvents;
  /** Read once per collection, by the SDK's reader. */
  readonly snapshot: () => MetricsSnapshot;
  /** Default: the global one (`metrics.getMeterProvider()`). */
  readonly meterProvider?: MeterProvider;
  /**
   * What an attempt is, so where its duration goes: an HTTP request (default,
   * `http.client.request.duration`), a gRPC call (`grpcClient`'s transport: `rpc.client.duration`,
   * the RPC conventions) or a run of a `policy()`'s function (`weft.policy.attempt.duration`).
   */
  readonly attempts?: "http" | "rpc" | "policy";
}

/** Distinct `error.type` values one client reports before the rest become `_OTHER`. */
const MAX_ERROR_TYPES = 64;
const NOOP_METER = createNoopMeter();

/**
 * The meter weft records into, or null when metrics are off: `provider` (default: the global one)
 * is the API's no-op provider — from this copy of `@opentelemetry/api` or from another.
 * @example if (weftMeter() === null) console.log("no OpenTelemetry SDK registered");
 */
export function weftMeter(provider: MeterProvider = metrics.getMeterProvider()): Meter | null {
  const meter = provider.getMeter(METER_NAME, METER_VERSION);
  // Another copy of the API has its own NoopMeter class: same name, different identity.
  return meter === NOOP_METER || (meter as object).constructor?.name === "NoopMeter" ? null : meter;
}

/**
 * Records a client's metrics into `meterProvider` (default: the global one) until the returned
 * disposer runs; returns null, having done nothing, when there is no provider.
 *
 * Per attempt: `http.client.request.duration` (s), `rpc.client.duration` (ms; or, opted in,
 * `rpc.client.call.duration` in s — rpc.ts) for a gRPC client or
 * `weft.policy.attempt.duration` (s) for a policy — the only record on every call. Per decision:
 * `weft.client.retries`, `.hedges`, `.budget_exhausted`, `.limited`, `.breaker.transitions`,
 * `.endpoint.ejections`. Per collection, from one `snapshot()`: `weft.client.calls` (by outcome),
 * `.timeouts`, `.inflight`, `.endpoint.inflight`, `.queue_depth`, `.concurrency.limit`,
 * `.endpoints` (by state), `.breakers.open`, `.retry_budget`, `.discovery.stale`. See
 * `metrics-instruments.ts` for units and attributes.
 * @example
 * const stop = clientMetrics({ service: "catalog", events: client.events, snapshot: () => client.snapshot() });
 * // … on close:
 * stop?.();
 */
export function clientMetrics(options: ClientMetricsOptions): Disposer | null {
  const meter = weftMeter(options.meterProvider);
  if (meter === null) return null;
  const { service, events, snapshot } = options;
  const instruments = instrumentsFor(meter);
  const errorTypes = new BoundedNames(MAX_ERROR_TYPES);
  const base: Attributes = { "weft.service": service };

  const disposers: Disposer[] = [
    recordAttempts(options.attempts ?? "http", events, instruments, service, errorTypes),
    events.onRetry((e) =>
      instruments.retries.add(1, { "weft.service": service, "error.type": errorTypes.name(e.reason) }),
    ),
    events.onHedge(() => instruments.hedges.add(1, base)),
    events.onBudgetExhausted((e) =>
      instruments.budgetExhausted.add(1, { "weft.service": service, "weft.budget.kind": e.kind }),
    ),
    events.onLimited((e) => instruments.limited.add(1, { "weft.service": service, "weft.limit.kind": e.kind })),
    events.onBreakerStateChange((e) =>
      instruments.breakerTransitions.add(1, {
        ...serverAttributes(e.endpoint),
        "weft.service": service,
        "weft.breaker.state": e.to,
      }),
    ),
    events.onEndpointHealth((e) => {
      if (e.kind !== "ejected") return;
      instruments.ejections.add(1, {
        ...serverAttributes(e.endpoint),
        "weft.service": service,
        "weft.ejection.reason": e.reason ?? "_OTHER",
      });
    }),
  ];

  // Calls, timeouts and state: read from the snapshot at collection time, with the meter's other clients.
  disposers.push(observerFor(meter, instruments).add({ service, snapshot }));

  let disposed = false;
  return () => {
    if (disposed) return;
    disposed = true;
    for (const dispose of disposers) dispose();
  };
}

/** One record per attempt, in the histogram of what an attempt is. */
function recordAttempts(
  kind: "http" | "rpc" | "policy",
  events: ClientEvents,
  instruments: WeftInstruments,
  service: string,
  errorTypes: BoundedNames,
): Disposer {
  switch (kind) {
    case "http":
      return events.onAttemptEnd((e) =>
        instruments.attemptDuration.record(e.durationMs / 1000, attemptAttributes(e, service, errorTypes)),
      );
    case "rpc": {
      // The conventions the spans follow (rpc.ts), read when the client is made.
      const conventions = rpcConventions();
      return events.onAttemptEnd((e) => {
        if (conventions.legacy)
          instruments.rpcDuration.record(e.durationMs, rpcAttemptAttributes(e, service, errorTypes, LEGACY_ONLY));
        if (conventions.stable)
          instruments.rpcCallDuration.record(
            e.durationMs / 1000,
            rpcAttemptAttributes(e, service, errorTypes, STABLE_ONLY),
          );
      });
    }
    case "policy":
      return events.onAttemptEnd((e) => {
        const attributes: Attributes = { "weft.service": service, "weft.outcome": e.outcome };
        if (e.error !== undefined) attributes["error.type"] = errorTypes.name(errorType(e.error));
        instruments.policyDuration.record(e.durationMs / 1000, attributes);
      });
  }
}

/** The semconv attributes of one attempt; `error.type` as the attempt span has it. */
function attemptAttributes(e: AttemptEndEvent, service: string, errorTypes: BoundedNames): Attributes {
  const server = serverAttributes(e.endpoint);
  const attributes: Attributes = {
    "http.request.method": metricMethod(e.method),
    "server.address": server["server.address"],
    "server.port": server["server.port"],
    "weft.service": service,
  };
  // A client with routes labels each attempt with its route (a name or pattern: bounded).
  if (e.route !== undefined) attributes["weft.route"] = e.route;
  const status = e.status;
  if (status !== undefined) {
    attributes["http.response.status_code"] = status;
    // Client side, 4xx and 5xx are errors (HTTP semantic conventions), named by their status.
    if (status >= 400) attributes["error.type"] = String(status);
  } else if (e.error !== undefined) {
    attributes["error.type"] = errorTypes.name(errorType(e.error));
  }
  return attributes;
}

/** Each histogram gets the attributes of its own conventions (under `rpc/dup`, both are recorded). */
const LEGACY_ONLY: RpcConventions = Object.freeze({ legacy: true, stable: false });
const STABLE_ONLY: RpcConventions = Object.freeze({ legacy: false, stable: true });

/**
 * The RPC conventions' attributes of one gRPC attempt, as its attempt span has them (rpc.ts): the
 * status once it answered, any code but OK an `error.type`; a failure without an answer (never
 * connected, timed out) only its `error.type`.
 */
function rpcAttemptAttributes(
  e: AttemptEndEvent,
  service: string,
  errorTypes: BoundedNames,
  conventions: RpcConventions,
): Attributes {
  const server = serverAttributes(e.endpoint);
  const rpc = rpcOfPath(e.path) ?? { service: "_OTHER", method: "_OTHER" };
  const attributes: Attributes = {
    ...rpcAttributes(rpc, conventions),
    "server.address": server["server.address"],
    "server.port": server["server.port"],
    "weft.service": service,
  };
  if (e.route !== undefined) attributes["weft.route"] = e.route;
  const res = e.response;
  if (res !== undefined) rpcStatusAttributes(rpcStatusCode(res), conventions, attributes);
  else if (e.error !== undefined) attributes["error.type"] = errorTypes.name(errorType(e.error));
  return attributes;
}

/** Passes the first `max` distinct names through and turns later ones into `_OTHER`, bounding a label. */
class BoundedNames {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  name(value: string): string {
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.#max) return "_OTHER";
    this.#seen.add(value);
    return value;
  }
}

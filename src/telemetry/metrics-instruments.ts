/**
 * The instruments weft records, in one place: names, units, descriptions and the attribute
 * vocabulary, so a dashboard author reads one file to know what exists.
 *
 * - `http.client.request.duration` follows the HTTP semantic conventions (seconds, their bucket
 *   advice), so the charts users already have for instrumented HTTP clients show weft's attempts.
 *   A gRPC client's attempts go to `rpc.client.duration` instead (the RPC conventions the spans
 *   follow, rpc.ts: milliseconds, `rpc.system`, `rpc.service`, `rpc.method`,
 *   `rpc.grpc.status_code`), never both — or, with `OTEL_SEMCONV_STABILITY_OPT_IN=rpc`, to the
 *   newer `rpc.client.call.duration` (s; `rpc/dup`: both); a policy's runs to
 *   `weft.policy.attempt.duration`.
 * - Everything else is weft's own, under `weft.client.*`, with attributes only from the service
 *   (`weft.service`), the endpoint (`server.address`, `server.port`), the method
 *   (`http.request.method`, unknown ones as `_OTHER`), the status code
 *   (`http.response.status_code`), the error type (`error.type`) and weft's own enums
 *   (`weft.outcome`, `weft.budget.kind`, `weft.limit.kind`, `weft.breaker.state`,
 *   `weft.ejection.reason`, `weft.endpoint.state`) — never a path or an id, so the series stay
 *   bounded by services × endpoints.
 * - One synchronous record per attempt, nothing else per call: an SDK record costs ~1.5 µs here
 *   (attribute hashing, bucket search), so calls and timeouts are the client's own counters,
 *   observed at collection time like the gauges, and the rarer decisions (retries, hedges,
 *   breaker changes) are counted as they happen.
 * - Counts of things present now (in flight, queued, endpoints, open breakers) are observable
 *   up-down counters, as semconv's `http.client.active_requests` is: they add up across endpoints
 *   and clients. Levels that do not add up (retry tokens, staleness) are observable gauges.
 *
 * Instruments are made once per meter and shared by every client that records into it; each
 * client adds its own event listeners, and one batch callback per meter reads all the clients
 * (`metrics-observe.ts`).
 */
import {
  ValueType,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type ObservableCounter,
  type ObservableGauge,
  type ObservableUpDownCounter,
} from "@opentelemetry/api";
import { Endpoint } from "../core/endpoint.js";

/** The instrumentation scope weft's meter reports. */
export const METER_NAME = "weft";
export const METER_VERSION = "0.1.0";

/** Semantic-convention advice for `http.client.request.duration`, in seconds. */
export const DURATION_BUCKETS_S: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
]);

/**
 * Bucket boundaries for `rpc.client.duration`, in ms: the HTTP advice's, in the RPC conventions'
 * unit, so the two histograms chart alike.
 */
const DURATION_BUCKETS_MS: readonly number[] = Object.freeze([
  5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000,
]);

/** RFC 9110 methods plus PATCH and QUERY; anything else is `_OTHER` (HTTP semantic conventions). */
const KNOWN_METHODS = new Set([
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "TRACE",
  "QUERY",
]);

/** `http.request.method`: the method when it is a known one, else `_OTHER`, so a caller cannot mint series. */
export function metricMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "_OTHER";
}

/** `server.address` and `server.port` of an endpoint. */
export interface ServerAttributes extends Attributes {
  readonly "server.address": string;
  readonly "server.port": number;
}

/** Parsed endpoint URLs kept; the cache starts over past this (discovery churn). */
const MAX_ENDPOINTS = 1024;
const servers = new Map<string, ServerAttributes>();

/** The server attributes of an endpoint URL, parsed once, as `Endpoint` parses it for the attempt span. */
export function serverAttributes(url: string): ServerAttributes {
  let found = servers.get(url);
  if (found === undefined) {
    if (servers.size >= MAX_ENDPOINTS) servers.clear();
    found = parseServer(url);
    servers.set(url, found);
  }
  return found;
}

function parseServer(url: string): ServerAttributes {
  try {
    const endpoint = new Endpoint({ url }, 0);
    return Object.freeze({ "server.address": endpoint.hostname, "server.port": endpoint.port });
  } catch {
    // Never the raw string: it could carry a path.
    return Object.freeze({ "server.address": "_OTHER", "server.port": 0 });
  }
}

/** Every instrument weft records into one meter. */
export interface WeftInstruments {
  readonly attemptDuration: Histogram;
  readonly rpcDuration: Histogram;
  readonly rpcCallDuration: Histogram;
  readonly policyDuration: Histogram;
  readonly calls: ObservableCounter;
  readonly timeouts: ObservableCounter;
  readonly retries: Counter;
  readonly hedges: Counter;
  readonly budgetExhausted: Counter;
  readonly limited: Counter;
  readonly breakerTransitions: Counter;
  readonly ejections: Counter;
  readonly inflight: ObservableUpDownCounter;
  readonly endpointInflight: ObservableUpDownCounter;
  readonly queueDepth: ObservableUpDownCounter;
  readonly concurrencyLimit: ObservableGauge;
  readonly endpoints: ObservableUpDownCounter;
  readonly breakersOpen: ObservableUpDownCounter;
  readonly retryBudget: ObservableGauge;
  readonly discoveryStale: ObservableGauge;
}

const byMeter = new WeakMap<Meter, WeftInstruments>();

/** The instruments of `meter`, made on first use (an SDK meter is the same object for the same scope). */
export function instrumentsFor(meter: Meter): WeftInstruments {
  let made = byMeter.get(meter);
  if (made === undefined) {
    made = createInstruments(meter);
    byMeter.set(meter, made);
  }
  return made;
}

function createInstruments(meter: Meter): WeftInstruments {
  const int = ValueType.INT;
  return {
    attemptDuration: meter.createHistogram("http.client.request.duration", {
      unit: "s",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
      description: "Duration of HTTP client requests: one per attempt, retries and hedges included.",
    }),
    rpcDuration: meter.createHistogram("rpc.client.duration", {
      unit: "ms",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_MS] },
      description: "Duration of outbound RPCs (gRPC): one per attempt, retries and hedges included.",
    }),
    rpcCallDuration: meter.createHistogram("rpc.client.call.duration", {
      unit: "s",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
      description: "Duration of outgoing RPCs (gRPC): one per attempt, retries and hedges included.",
    }),
    policyDuration: meter.createHistogram("weft.policy.attempt.duration", {
      unit: "s",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
      description: "Duration of each run of a policy's function (policy().execute), retries and hedges included.",
    }),
    calls: meter.createObservableCounter("weft.client.calls", {
      unit: "{call}",
      valueType: int,
      description: "Calls ended, by the classifier's outcome (success, failure, ignorable).",
    }),
    timeouts: meter.createObservableCounter("weft.client.timeouts", {
      unit: "{call}",
      valueType: int,
      description: "Calls that ended on an attempt or total timeout.",
    }),
    retries: meter.createCounter("weft.client.retries", {
      unit: "{retry}",
      valueType: int,
      description: "Failed attempts sent again, by what failed (status code or error type).",
    }),
    hedges: meter.createCounter("weft.client.hedges", {
      unit: "{hedge}",
      valueType: int,
      description: "Hedges (budgeted early resends) sent.",
    }),
    budgetExhausted: meter.createCounter("weft.client.budget_exhausted", {
      unit: "{refusal}",
      valueType: int,
      description: "Retries or hedges the retry budget refused.",
    }),
    limited: meter.createCounter("weft.client.limited", {
      unit: "{call}",
      valueType: int,
      description: "Calls a concurrency or rate limit turned away.",
    }),
    breakerTransitions: meter.createCounter("weft.client.breaker.transitions", {
      unit: "{transition}",
      valueType: int,
      description: "Circuit breaker state changes, by endpoint and the state entered.",
    }),
    ejections: meter.createCounter("weft.client.endpoint.ejections", {
      unit: "{ejection}",
      valueType: int,
      description: "Endpoints ejected by outlier detection.",
    }),
    inflight: meter.createObservableUpDownCounter("weft.client.inflight", {
      unit: "{call}",
      valueType: int,
      description: "Calls in flight.",
    }),
    endpointInflight: meter.createObservableUpDownCounter("weft.client.endpoint.inflight", {
      unit: "{request}",
      valueType: int,
      description: "Attempts in flight, by endpoint.",
    }),
    queueDepth: meter.createObservableUpDownCounter("weft.client.queue_depth", {
      unit: "{call}",
      valueType: int,
      description: "Calls waiting for a concurrency slot.",
    }),
    concurrencyLimit: meter.createObservableGauge("weft.client.concurrency.limit", {
      unit: "{call}",
      valueType: int,
      description: "The concurrency limit now (fixed, or the adaptive estimate).",
    }),
    endpoints: meter.createObservableUpDownCounter("weft.client.endpoints", {
      unit: "{endpoint}",
      valueType: int,
      description: "Endpoints known to the client, by state.",
    }),
    breakersOpen: meter.createObservableUpDownCounter("weft.client.breakers.open", {
      unit: "{breaker}",
      valueType: int,
      description: "Endpoints whose circuit breaker is open.",
    }),
    retryBudget: meter.createObservableGauge("weft.client.retry_budget", {
      unit: "{token}",
      description: "Retry tokens available now.",
    }),
    discoveryStale: meter.createObservableGauge("weft.client.discovery.stale", {
      unit: "1",
      valueType: int,
      description: "1 while discovery's source fails and the last good set keeps serving, else 0.",
    }),
  };
}

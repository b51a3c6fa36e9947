/**
 * The inbound side's tracing and metrics, through `@opentelemetry/api` only (as the client's).
 *
 * Tracing: the caller's W3C `traceparent`/`baggage` are extracted through the global propagator
 * and a SERVER span is started for the request, with the HTTP semantic-convention attributes —
 * unless an HTTP instrumentation already did both (OpenTelemetry's http instrumentation runs the
 * request handler with its SERVER span active): then weft adds no span and the active context is
 * the one its handler and its outbound calls continue. Without a tracer provider: nothing.
 *
 * Metrics: `http.server.request.duration` (seconds, semconv buckets) per admitted request, with
 * bounded attributes — method (`_OTHER` for unknown ones), status, `http.route` only when the
 * framework or the `route` option names a template (never the raw path), `url.scheme`,
 * `error.type` for 5xx; weft's counters for shed requests, authorization decisions and refused
 * deadlines as they happen; in-flight and the admission limit observed from the snapshot at
 * collection. Without a meter provider: nothing, no instrument made.
 */
import {
  SpanKind,
  SpanStatusCode,
  ValueType,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type MeterProvider,
  type Span,
} from "@opentelemetry/api";
import type { IncomingMessage } from "node:http";
import type { ServerSnapshot } from "../core/server-snapshot.js";
import { DURATION_BUCKETS_S, metricMethod } from "./metrics-instruments.js";
import { weftMeter } from "./metrics.js";
import { tracingEnabled } from "./tracing.js";

const TRACER_NAME = "weft";
const TRACER_VERSION = "0.1.0";

/** One request's SERVER span, and the context its handler runs in. */
export interface ServerSpan {
  /** The context with the span active (and the caller's baggage). */
  readonly context: Context;
  /** Ends the span with the response's status (and the route template, when known). */
  end(status: number, route: string | undefined, aborted: boolean): void;
}

/**
 * Starts the SERVER span of one inbound request, or returns null: no tracer provider, or an HTTP
 * instrumentation already made one (an active span is there).
 */
export function startServerSpan(
  req: IncomingMessage,
  method: string,
  path: string,
  scheme: "http" | "https",
): ServerSpan | null {
  if (!tracingEnabled()) return null;
  const active = context.active();
  if (trace.getSpan(active) !== undefined) return null;
  const parent = propagation.extract(active, req.headers);
  const attributes: Attributes = {
    "http.request.method": metricMethod(method),
    "url.path": path,
    "url.scheme": scheme,
    "network.protocol.version": req.httpVersion,
  };
  if (metricMethod(method) !== method) attributes["http.request.method_original"] = method;
  const q = req.url?.indexOf("?") ?? -1;
  if (q !== -1) attributes["url.query"] = (req.url as string).slice(q + 1);
  const host = req.headers.host;
  if (host !== undefined) {
    const { address, port } = splitHost(host);
    attributes["server.address"] = address;
    if (port !== undefined) attributes["server.port"] = port;
  }
  const socket = req.socket;
  if (socket?.remoteAddress !== undefined) attributes["network.peer.address"] = socket.remoteAddress;
  if (socket?.remotePort !== undefined) attributes["network.peer.port"] = socket.remotePort;
  const agent = req.headers["user-agent"];
  if (agent !== undefined) attributes["user_agent.original"] = agent;
  const span: Span = trace
    .getTracer(TRACER_NAME, TRACER_VERSION)
    .startSpan(metricMethod(method), { kind: SpanKind.SERVER, attributes }, parent);
  return {
    context: trace.setSpan(parent, span),
    end(status, route, aborted) {
      if (route !== undefined) {
        span.setAttribute("http.route", route);
        span.updateName(`${metricMethod(method)} ${route}`);
      }
      span.setAttribute("http.response.status_code", status);
      // Server spans: only 5xx is an error (a 4xx is the caller's).
      if (status >= 500) {
        span.setAttribute("error.type", String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      } else if (aborted) {
        span.setAttribute("error.type", "aborted");
        span.setStatus({ code: SpanStatusCode.ERROR, message: "the caller went away before the response finished" });
      }
      span.end();
    },
  };
}

/** Runs `fn` in `ctx` (an OpenTelemetry context from `startServerSpan`). */
export function withTraceContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

export interface ServerMetrics {
  /** One admitted request, finished. */
  request(durationMs: number, method: string, status: number, route: string | undefined, scheme: string): void;
  /** A request shed, by its priority class. */
  shed(priority: string): void;
  /** An authorization decision (`allow`, `deny`, `unauthenticated`, `malformed`). */
  authz(decision: string): void;
  /** A deadline refused: `expired` (504) or `malformed` (400). */
  deadline(kind: "expired" | "malformed"): void;
  dispose(): void;
}

/**
 * The inbound metrics of one server, or null (having made nothing) when there is no meter
 * provider. `snapshot` is read once per collection for the in-flight count and the limit.
 */
export function serverMetrics(
  service: string,
  snapshot: () => ServerSnapshot,
  meterProvider?: MeterProvider,
): ServerMetrics | null {
  const meter = weftMeter(meterProvider);
  if (meter === null) return null;
  const int = ValueType.INT;
  const duration = meter.createHistogram("http.server.request.duration", {
    unit: "s",
    description: "Duration of HTTP server requests.",
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
  });
  const shed = meter.createCounter("weft.server.shed", {
    unit: "{request}",
    valueType: int,
    description: "Requests turned away by admission control (503), by priority class.",
  });
  const authz = meter.createCounter("weft.server.authz", {
    unit: "{request}",
    valueType: int,
    description: "Authorization decisions: allow, deny, unauthenticated, malformed.",
  });
  const deadline = meter.createCounter("weft.server.deadline.refused", {
    unit: "{request}",
    valueType: int,
    description: "Requests refused for their deadline: expired on arrival (504) or unreadable (400).",
  });
  const active = meter.createObservableUpDownCounter("http.server.active_requests", {
    unit: "{request}",
    valueType: int,
    description: "Number of active HTTP server requests.",
  });
  const limit = meter.createObservableGauge("weft.server.concurrency.limit", {
    unit: "{request}",
    valueType: int,
    description: "The admission limit now (fixed or adaptive).",
  });
  const base: Attributes = { "weft.service": service };
  const observe = (result: import("@opentelemetry/api").BatchObservableResult): void => {
    const s = snapshot();
    result.observe(active, s.inflight, base);
    if (s.admission !== null) result.observe(limit, s.admission.limit, base);
  };
  meter.addBatchObservableCallback(observe, [active, limit]);
  return {
    request(durationMs, method, status, route, scheme) {
      const attributes: Attributes = {
        "weft.service": service,
        "http.request.method": metricMethod(method),
        "http.response.status_code": status,
        "url.scheme": scheme,
      };
      if (route !== undefined) attributes["http.route"] = route;
      if (status >= 500) attributes["error.type"] = String(status);
      duration.record(durationMs / 1000, attributes);
    },
    shed: (priority) => shed.add(1, { "weft.service": service, "weft.priority": priority }),
    authz: (decision) => authz.add(1, { "weft.service": service, "weft.authz.decision": decision }),
    deadline: (kind) => deadline.add(1, { "weft.service": service, "weft.deadline.refusal": kind }),
    dispose: () => meter.removeBatchObservableCallback(observe, [active, limit]),
  };
}

function splitHost(host: string): { address: string; port: number | undefined } {
  // [::1]:8080, example.com:8080, example.com
  const close = host.startsWith("[") ? host.indexOf("]") : -1;
  const colon = host.lastIndexOf(":");
  if (colon > close && colon !== -1) {
    const port = Number(host.slice(colon + 1));
    return {
      address: host.slice(close === -1 ? 0 : 1, close === -1 ? colon : close),
      port: Number.isInteger(port) ? port : undefined,
    };
  }
  return { address: close === -1 ? host : host.slice(1, close), port: undefined };
}

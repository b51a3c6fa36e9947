/**
 * Tracing through `@opentelemetry/api` only (the application's SDK, if any, does the rest):
 * - a logical span per call (INTERNAL: it wraps the CLIENT spans of its attempts, as the HTTP
 *   semantic conventions ask when an instrumentation retries), and
 * - one CLIENT span per attempt with the HTTP semantic-convention attributes, whose context is
 *   injected into the attempt's headers through the global propagator (W3C `traceparent`).
 *
 * With no tracer provider registered the layers pass the request straight through: one check of
 * the global provider per call, no span objects, no context switch.
 */
import {
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { errorCode } from "../core/errors.js";
import { withAttr } from "../core/request.js";
import type { Layer, MeshRequest, MeshResponse } from "../core/types.js";

const TRACER_NAME = "weft";
const TRACER_VERSION = "0.1.0";
/** The context of the call's logical span, handed from the call layer to the attempt layer. */
const CALL_CONTEXT = Symbol("weft.trace.callContext");
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when an application registered a tracer provider (an SDK). */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return delegate !== NOOP_PROVIDER;
}

let tracer: Tracer | undefined;
function getTracer(): Tracer {
  // The ProxyTracer follows a provider registered later, so one instance serves for good.
  tracer ??= trace.getTracer(TRACER_NAME, TRACER_VERSION);
  return tracer;
}

/** The logical span of a call: `"{service} {method}"`, parent of the attempt spans. */
export function callSpanLayer(): Layer {
  return (next) => (req) => {
    if (!tracingEnabled()) return next(req);
    const parent = context.active();
    const span = getTracer().startSpan(
      `${req.service} ${req.method}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { "http.request.method": req.method, "weft.service": req.service, "url.path": pathOf(req.path) },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    const derived = withAttr(req, CALL_CONTEXT, ctx);
    // The layers below note their decisions (retry, hedge, breaker open, budget, ejection) here.
    req.call.note = (name, attributes) => span.addEvent(name, attributes);
    return context.with(ctx, next, undefined, derived).then(
      (res) => {
        req.call.note = null;
        span.setAttribute("http.response.status_code", res.status);
        span.setAttribute("weft.attempts", req.call.attempts);
        if (res.status >= 400) {
          span.setAttribute("error.type", String(res.status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
        return res;
      },
      (error: unknown) => {
        req.call.note = null;
        span.setAttribute("weft.attempts", req.call.attempts);
        endWithError(span, error);
        throw error;
      },
    );
  };
}

/**
 * One CLIENT span per attempt, its context injected into the attempt's headers — unless an HTTP
 * instrumentation hooked into the transport injects its own (`instrumented()`): then weft adds no
 * header and runs the attempt with its span active, so the instrumentation's span is a child of
 * weft's and the one `traceparent` the server receives continues the same trace.
 */
export function attemptSpanLayer(instrumented: () => boolean = () => false): Layer {
  return (next) => (req) => {
    if (!tracingEnabled()) return next(req);
    const parent = (req.attrs[CALL_CONTEXT] as Context | undefined) ?? context.active();
    const endpoint = req.endpoint;
    const attributes: Attributes = { "http.request.method": req.method };
    if (endpoint !== null) {
      attributes["server.address"] = endpoint.hostname;
      attributes["server.port"] = endpoint.port;
      attributes["url.full"] = endpoint.url + req.path;
    }
    if (req.attempt > 0) attributes["http.request.resend_count"] = req.attempt;
    const span = getTracer().startSpan(req.method, { kind: SpanKind.CLIENT, attributes }, parent);
    const spanContext = trace.setSpan(parent, span);
    let sent: Promise<MeshResponse>;
    if (instrumented()) {
      // The instrumentation appends its own header: drop any the caller passed (a forwarded
      // inbound traceparent), so the request carries exactly one.
      sent = context.with(spanContext, next, undefined, withoutPropagationFields(req));
    } else {
      const carrier: Record<string, string> = {};
      propagation.inject(spanContext, carrier);
      sent = next(hasKeys(carrier) ? { ...req, headers: { ...req.headers, ...carrier } } : req);
    }
    return sent.then(
      (res) => endAttempt(span, res),
      (error: unknown) => {
        endWithError(span, error);
        throw error;
      },
    );
  };
}

function endAttempt(span: Span, res: MeshResponse): MeshResponse {
  span.setAttribute("http.response.status_code", res.status);
  // Client spans: 4xx and 5xx are errors (HTTP semantic conventions).
  if (res.status >= 400) {
    span.setAttribute("error.type", String(res.status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
  return res;
}

function endWithError(span: Span, error: unknown): void {
  span.setAttribute("error.type", errorType(error));
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/** `error.type`: the stable code when there is one (`WEFT_ERR_ATTEMPT_TIMEOUT`, `ECONNREFUSED`), else the class name. */
export const errorType = errorCode;

function pathOf(path: string): string {
  const q = path.indexOf("?");
  return q === -1 ? path : path.slice(0, q);
}

function withoutPropagationFields(req: MeshRequest): MeshRequest {
  let headers: Record<string, string | readonly string[]> | undefined;
  for (const field of propagation.fields()) {
    const name = field.toLowerCase();
    if (req.headers[name] === undefined) continue;
    headers ??= { ...req.headers };
    delete headers[name];
  }
  return headers === undefined ? req : { ...req, headers };
}

function hasKeys(object: Record<string, string>): boolean {
  for (const _ in object) return true;
  return false;
}

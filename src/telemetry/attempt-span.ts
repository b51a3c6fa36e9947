/**
 * The `attempt-trace` role: one CLIENT span per attempt with the HTTP semantic-convention
 * attributes, innermost so it measures wire time only and its `traceparent` is injected last (no
 * middleware can overwrite it).
 */
import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import type { Layer, MeshResponse } from "../core/types.js";
import { endRpc, rpcAttributes, rpcConventions, rpcOf, rpcSpanName, type RpcConventions } from "./rpc.js";
import { CALL_CONTEXT, endWithError, getTracer, hasKeys, tracingEnabled, withoutPropagationFields } from "./tracing.js";

/**
 * One CLIENT span per attempt, its context injected into the attempt's headers — unless an HTTP
 * instrumentation hooked into the transport injects its own (`instrumented()`): then weft adds no
 * header and runs the attempt with its span active, so the instrumentation's span is a child of
 * weft's and the one `traceparent` the server receives continues the same trace.
 */
export function attemptSpanLayer(
  instrumented: () => boolean = () => false,
  conventions: RpcConventions = rpcConventions(),
): Layer {
  return (next) => (req) => {
    if (!tracingEnabled()) return next(req);
    const parent = (req.attrs[CALL_CONTEXT] as Context | undefined) ?? context.active();
    const endpoint = req.endpoint;
    // A gRPC call follows the RPC conventions (rpc.ts); anything else the HTTP ones.
    const rpc = rpcOf(req);
    const attributes: Attributes =
      rpc === null ? { "http.request.method": req.method } : rpcAttributes(rpc, conventions);
    if (endpoint !== null) {
      attributes["server.address"] = endpoint.hostname;
      attributes["server.port"] = endpoint.port;
      if (rpc === null) attributes["url.full"] = endpoint.url + req.path;
    }
    // gRPC's own attempt spans (gRFC A72) say "previous-rpc-attempts".
    if (req.attempt > 0) attributes[rpc === null ? "http.request.resend_count" : "previous-rpc-attempts"] = req.attempt;
    const name = rpc === null ? req.method : rpcSpanName(rpc);
    const span = getTracer().startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
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
      (res) => (rpc === null ? endAttempt(span, res) : endRpcAttempt(span, res, conventions)),
      (error: unknown) => {
        endWithError(span, error);
        throw error;
      },
    );
  };
}

function endRpcAttempt(span: Span, res: MeshResponse, conventions: RpcConventions): MeshResponse {
  endRpc(span, res, conventions);
  span.end();
  return res;
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

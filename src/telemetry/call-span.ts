/**
 * The `trace` role: the logical span of a call (INTERNAL), above the deadline so it covers every
 * attempt, backoff and queue; the attempt spans below are its children. While it is open the
 * layers below note their decisions on it through `CallState.note`.
 */
import { SpanKind, SpanStatusCode, context, trace, type Span } from "@opentelemetry/api";
import { withAttr } from "../core/request.js";
import type { CallRoute } from "../core/route.js";
import type { Layer } from "../core/types.js";
import { endRpc, rpcAttributes, rpcConventions, rpcOf, rpcSpanName, type RpcConventions } from "./rpc.js";
import { CALL_CONTEXT, endWithError, getTracer, pathOf, tracingEnabled } from "./tracing.js";

/** The route the call took and its backend, when the client routes (bounded labels, never the raw path). */
function routeAttributes(span: Span, route: CallRoute | null): void {
  if (route === null) return;
  span.setAttribute("weft.route", route.name);
  span.setAttribute("weft.route.backend", route.backend);
}

/** The logical span of a call: `"{service} {method}"`, parent of the attempt spans. */
export function callSpanLayer(conventions: RpcConventions = rpcConventions()): Layer {
  return (next) => (req) => {
    if (!tracingEnabled()) return next(req);
    const parent = context.active();
    // A gRPC call follows the RPC conventions (rpc.ts); anything else the HTTP ones.
    const rpc = rpcOf(req);
    const span = getTracer().startSpan(
      `${req.service} ${rpc === null ? req.method : rpcSpanName(rpc)}`,
      {
        kind: SpanKind.INTERNAL,
        attributes:
          rpc === null
            ? { "http.request.method": req.method, "weft.service": req.service, "url.path": pathOf(req.path) }
            : { ...rpcAttributes(rpc, conventions), "weft.service": req.service },
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
        span.setAttribute("weft.attempts", req.call.attempts);
        routeAttributes(span, req.call.route);
        if (rpc !== null) endRpc(span, res, conventions);
        else span.setAttribute("http.response.status_code", res.status);
        if (rpc === null && res.status >= 400) {
          span.setAttribute("error.type", String(res.status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
        return res;
      },
      (error: unknown) => {
        req.call.note = null;
        span.setAttribute("weft.attempts", req.call.attempts);
        routeAttributes(span, req.call.route);
        endWithError(span, error);
        throw error;
      },
    );
  };
}

/**
 * A policy call's span (`policy().execute`): INTERNAL, named by the policy (`"orders-db"`), over
 * every run, backoff and wait, its decisions (retry, hedge, breaker, budget) as events. The
 * function runs with it active, so what the function's own instrumentation records — a database
 * client's span per query — are its children, one per run.
 */
export function policySpanLayer(): Layer {
  return (next) => (req) => {
    if (!tracingEnabled()) return next(req);
    const parent = context.active();
    const span = getTracer().startSpan(
      req.service,
      { kind: SpanKind.INTERNAL, attributes: { "weft.service": req.service } },
      parent,
    );
    req.call.note = (name, attributes) => span.addEvent(name, attributes);
    return context.with(trace.setSpan(parent, span), next, undefined, req).then(
      (res) => {
        req.call.note = null;
        span.setAttribute("weft.attempts", req.call.attempts);
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

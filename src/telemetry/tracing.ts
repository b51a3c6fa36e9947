/**
 * Tracing through `@opentelemetry/api` only (the application's SDK, if any, does the rest). This
 * file holds what the two span layers share; each layer is in the file of its role
 * (`call-span.ts`, `attempt-span.ts`):
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
  SpanStatusCode,
  propagation,
  trace,
  type Span,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { errorCode } from "../core/errors.js";
import type { MeshRequest } from "../core/types.js";

const TRACER_NAME = "weft";
const TRACER_VERSION = "0.1.0";
/** The context of the call's logical span, handed from the call layer to the attempt layer. */
export const CALL_CONTEXT = Symbol("weft.trace.callContext");
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when an application registered a tracer provider (an SDK). */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return delegate !== NOOP_PROVIDER;
}

let tracer: Tracer | undefined;
let tracerOf: TracerProvider | undefined;
export function getTracer(): Tracer {
  // The API's proxy provider hands out a tracer that follows a provider registered later; but
  // `trace.disable()` replaces the proxy itself, so the tracer is taken again from a new one.
  const provider = trace.getTracerProvider();
  if (tracer === undefined || provider !== tracerOf) {
    tracer = provider.getTracer(TRACER_NAME, TRACER_VERSION);
    tracerOf = provider;
  }
  return tracer;
}

export function endWithError(span: Span, error: unknown): void {
  span.setAttribute("error.type", errorType(error));
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/** `error.type`: the stable code when there is one (`WEFT_ERR_ATTEMPT_TIMEOUT`, `ECONNREFUSED`), else the class name. */
export const errorType = errorCode;

export function pathOf(path: string): string {
  const q = path.indexOf("?");
  return q === -1 ? path : path.slice(0, q);
}

export function withoutPropagationFields(req: MeshRequest): MeshRequest {
  let headers: Record<string, string | readonly string[]> | undefined;
  for (const field of propagation.fields()) {
    const name = field.toLowerCase();
    if (req.headers[name] === undefined) continue;
    headers ??= { ...req.headers };
    delete headers[name];
  }
  return headers === undefined ? req : { ...req, headers };
}

export function hasKeys(object: Record<string, string>): boolean {
  for (const _ in object) return true;
  return false;
}

/**
 * Tracing with the real OpenTelemetry SDK (in-memory exporter): the span tree of a call, the
 * attributes of its attempt span, and the traceparent the server received.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, staticDiscovery } from "weft";
import { startServer, type TestServer } from "../helpers/server.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let s: TestServer;

describe("without a tracer provider", () => {
  it("sends no traceparent and creates no span", async () => {
    const plain = await startServer();
    const c = createClient({ service: "untraced", discovery: staticDiscovery([plain.url]) });
    await (await c.request({ path: "/" })).text();
    expect(plain.received[0]?.headers.traceparent).toBeUndefined();
    await c.close();
    await plain.close();
  });
});

describe("with the OpenTelemetry SDK", () => {
  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    s = await startServer((req, res) => {
      res.statusCode = req.url === "/fail" ? 503 : 200;
      res.end();
    });
  });
  afterEach(() => exporter.reset());
  afterAll(async () => {
    await s.close();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("records a logical span with one CLIENT attempt span under it, and injects the attempt's context", async () => {
    const c = createClient({ service: "catalog", discovery: staticDiscovery([s.url]) });
    await (await c.request({ path: "/v1/items/42?x=1" })).text();
    await c.close();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    const call = spans.find((sp) => sp.kind === SpanKind.INTERNAL);
    const attempt = spans.find((sp) => sp.kind === SpanKind.CLIENT);
    expect(call?.name).toBe("catalog GET");
    expect(attempt?.name).toBe("GET");
    expect(attempt?.parentSpanContext?.spanId).toBe(call?.spanContext().spanId);
    expect(attempt?.spanContext().traceId).toBe(call?.spanContext().traceId);
    expect(attempt?.attributes).toMatchObject({
      "http.request.method": "GET",
      "server.address": "127.0.0.1",
      "server.port": s.port,
      "url.full": `${s.url}/v1/items/42?x=1`,
      "http.response.status_code": 200,
    });
    expect(attempt?.attributes["http.request.resend_count"]).toBeUndefined();
    const header = s.received.at(-1)?.headers.traceparent;
    expect(header).toBe(`00-${attempt?.spanContext().traceId}-${attempt?.spanContext().spanId}-01`);
  });

  it("continues the caller's active trace", async () => {
    const c = createClient({ service: "catalog", discovery: staticDiscovery([s.url]) });
    const parent = provider.getTracer("test").startSpan("handler");
    await context.with(trace.setSpan(context.active(), parent), async () => (await c.request({ path: "/" })).text());
    parent.end();
    await c.close();
    const call = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.INTERNAL);
    expect(call?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it("marks a 503 attempt as an error with error.type", async () => {
    const c = createClient({ service: "catalog", discovery: staticDiscovery([s.url]) });
    await (await c.request({ path: "/fail" })).text();
    await c.close();
    const attempt = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.CLIENT);
    expect(attempt?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt?.attributes["error.type"]).toBe("503");
    expect(attempt?.attributes["http.response.status_code"]).toBe(503);
  });

  it("records a transport error on the attempt span", async () => {
    const c = createClient({ service: "catalog", discovery: staticDiscovery(["http://127.0.0.1:1"]) });
    await c.request({ path: "/" }).catch(() => {});
    await c.close();
    const attempt = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.CLIENT);
    expect(attempt?.attributes["error.type"]).toBe("ECONNREFUSED");
    expect(attempt?.events.some((e) => e.name === "exception")).toBe(true);
  });

  it("can be turned off per client", async () => {
    const c = createClient({ service: "quiet", discovery: staticDiscovery([s.url]), tracing: false });
    await (await c.request({ path: "/quiet" })).text();
    await c.close();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(s.received.at(-1)?.headers.traceparent).toBeUndefined();
  });
});

/**
 * The decisions weft makes show up in traces (real OpenTelemetry SDK, in-memory exporter): span
 * events on the call span for a retry and why, a hedge, an open breaker, an ejection, an exhausted
 * budget; and exactly one traceparent per attempt, also with OpenTelemetry's undici
 * instrumentation active in the same process.
 */
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, staticDiscovery } from "weft";
import { scoped, server } from "../helpers/scope.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});
afterEach(() => exporter.reset());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

function spans(): { call: ReadableSpan; attempts: ReadableSpan[] } {
  const all = exporter.getFinishedSpans();
  const call = all.find((s) => s.kind === SpanKind.INTERNAL && s.instrumentationScope.name === "weft");
  if (call === undefined) throw new Error(`no call span among ${all.map((s) => s.name).join(", ")}`);
  const attempts = all.filter((s) => s.kind === SpanKind.CLIENT && s.instrumentationScope.name === "weft");
  return { call, attempts };
}

/** The traceparent values a request carried (raw headers: a duplicate would show up twice). */
function traceparents(rawHeaders: string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]?.toLowerCase() === "traceparent") values.push(rawHeaders[i + 1] as string);
  return values;
}

describe("span events for weft's decisions", () => {
  it("a call with one retry: the call span, two attempt spans, a retry event saying why, and each attempt's own traceparent", async () => {
    const seen: string[][] = [];
    const upstream = await server((req, res) => {
      seen.push(traceparents(req.rawHeaders));
      res.statusCode = seen.length === 1 ? 503 : 200;
      res.end();
    });
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([upstream.url]),
        retry: { backoff: { baseMs: 1, maxMs: 1 } },
      }),
    );
    expect((await client.request({ path: "/v1/items/7" })).status).toBe(200);
    const { call, attempts } = spans();
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) expect(attempt.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    const [first, second] = attempts.sort(
      (a, b) =>
        Number(a.attributes["http.request.resend_count"] ?? 0) - Number(b.attributes["http.request.resend_count"] ?? 0),
    );
    expect(first?.attributes).toMatchObject({ "http.response.status_code": 503, "error.type": "503" });
    expect(second?.attributes).toMatchObject({ "http.response.status_code": 200, "http.request.resend_count": 1 });
    const retry = call.events.find((e) => e.name === "weft.retry");
    expect(retry?.attributes).toMatchObject({ "weft.attempt": 1, "weft.retry.reason": "503" });
    expect(call.attributes["weft.attempts"]).toBe(2);
    // One header per attempt, naming that attempt's span.
    expect(seen).toEqual([
      [`00-${first?.spanContext().traceId}-${first?.spanContext().spanId}-01`],
      [`00-${second?.spanContext().traceId}-${second?.spanContext().spanId}-01`],
    ]);
  });

  it("notes a hedge on the call span", async () => {
    let n = 0;
    const upstream = await server(async (_req, res) => {
      n++;
      if (n === 1) await new Promise((resolve) => setTimeout(resolve, 300));
      res.end("ok");
    });
    const client = scoped(
      createClient({ service: "hedged", discovery: staticDiscovery([upstream.url]), hedge: { delayMs: 20 } }),
    );
    expect((await client.request({ path: "/" })).status).toBe(200);
    const { call, attempts } = spans();
    const hedge = call.events.find((e) => e.name === "weft.hedge");
    expect(hedge?.attributes).toMatchObject({ "weft.attempt": 1 });
    expect(Number(hedge?.attributes?.["weft.hedge.after_ms"])).toBeGreaterThanOrEqual(19);
    expect(attempts.length).toBeGreaterThanOrEqual(1);
  });

  it("notes an open breaker, and the ejection a failure caused", async () => {
    const upstream = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const client = scoped(
      createClient({
        service: "failing",
        discovery: staticDiscovery([upstream.url]),
        retry: false,
        breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 },
        outlier: { consecutiveFailures: 2 },
      }),
    );
    const events: string[] = [];
    for (let i = 0; i < 6; i++) {
      exporter.reset();
      await client.request({ path: "/" }).then(
        (r) => r.dump(),
        () => undefined,
      );
      events.push(...spans().call.events.map((e) => e.name));
    }
    expect(events).toContain("weft.endpoint_ejected");
    expect(events).toContain("weft.breaker_open");
  });

  it("notes an exhausted retry budget", async () => {
    const upstream = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const client = scoped(
      createClient({
        service: "broke",
        discovery: staticDiscovery([upstream.url]),
        retry: { budget: { ratio: 0, minPerSecond: 0 }, backoff: { baseMs: 1, maxMs: 1 } },
        breaker: false,
        outlier: false,
      }),
    );
    await (await client.request({ path: "/" })).dump();
    const { call } = spans();
    const exhausted = call.events.find((e) => e.name === "weft.budget_exhausted");
    expect(exhausted?.attributes).toMatchObject({ "weft.budget.kind": "retry" });
  });
});

describe("with OpenTelemetry's undici instrumentation active", () => {
  it("sends one traceparent: the instrumentation's, whose span is a child of weft's attempt span", async () => {
    const instrumentation = new UndiciInstrumentation();
    instrumentation.setTracerProvider(provider);
    instrumentation.enable();
    try {
      const seen: string[][] = [];
      const upstream = await server((req, res) => {
        seen.push(traceparents(req.rawHeaders));
        res.end("ok");
      });
      const client = scoped(createClient({ service: "instrumented", discovery: staticDiscovery([upstream.url]) }));
      // A caller forwarding an inbound traceparent: still one header on the wire.
      await (
        await client.request({
          path: "/a",
          headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
        })
      ).text();
      await client.close();
      const all = exporter.getFinishedSpans();
      const weftAttempt = all.find((s) => s.kind === SpanKind.CLIENT && s.instrumentationScope.name === "weft");
      const undiciSpan = all.find((s) => s.kind === SpanKind.CLIENT && s.instrumentationScope.name.includes("undici"));
      expect(undiciSpan, "the instrumentation recorded its span").toBeDefined();
      expect(undiciSpan?.parentSpanContext?.spanId).toBe(weftAttempt?.spanContext().spanId);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toEqual([`00-${undiciSpan?.spanContext().traceId}-${undiciSpan?.spanContext().spanId}-01`]);
    } finally {
      instrumentation.disable();
    }
  });

  it("injects its own header again once the instrumentation is disabled", async () => {
    const seen: string[][] = [];
    const upstream = await server((req, res) => {
      seen.push(traceparents(req.rawHeaders));
      res.end("ok");
    });
    const client = scoped(createClient({ service: "plain", discovery: staticDiscovery([upstream.url]) }));
    await (await client.request({ path: "/" })).text();
    expect(seen[0]).toHaveLength(1);
    expect(seen[0]?.[0]).toBe(
      `00-${spans().attempts[0]?.spanContext().traceId}-${spans().attempts[0]?.spanContext().spanId}-01`,
    );
  });
});

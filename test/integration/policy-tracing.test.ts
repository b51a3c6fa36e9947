/**
 * `policy().execute` in traces (real OpenTelemetry SDK, in-memory exporter): one INTERNAL span per
 * call named by the policy, its decisions as events, and the function's own spans — what a
 * database client's instrumentation records per query — as its children, one per run.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { policy, type Policy } from "weft";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
/** Stands in for a database client's instrumentation: a CLIENT span per query, under the active span. */
const db = trace.getTracer("db-driver");
const open: Policy<unknown>[] = [];

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  exporter.reset();
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

/** A query that fails its first `failures` runs, recording a span per run as a driver would. */
function query(failures: number): () => Promise<string> {
  let runs = 0;
  return () =>
    db.startActiveSpan("SELECT orders", { kind: SpanKind.CLIENT }, async (span) => {
      await Promise.resolve();
      span.end();
      if (++runs <= failures) throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
      return "rows";
    });
}

function make(options: Parameters<typeof policy>[0]): Policy<unknown> {
  const p: Policy<unknown> = policy(options);
  open.push(p);
  return p;
}

describe("a policy call's span", () => {
  it("is named by the policy, covers every run (the function's spans its children) and notes the retry", async () => {
    const p = make({ name: "orders-db", retry: { maxAttempts: 3, backoff: { baseMs: 1, maxMs: 2 } } });
    expect(await p.execute(query(1))).toBe("rows");
    const all = exporter.getFinishedSpans();
    const call = all.find((s) => s.instrumentationScope.name === "weft");
    const runs = all.filter((s) => s.name === "SELECT orders");
    expect(call?.name).toBe("orders-db");
    expect(call?.kind).toBe(SpanKind.INTERNAL);
    expect(call?.attributes).toMatchObject({ "weft.service": "orders-db", "weft.attempts": 2 });
    expect(call?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(call?.events.map((e) => e.name)).toEqual(["weft.retry"]);
    expect(runs).toHaveLength(2);
    for (const run of runs) expect(run.parentSpanContext?.spanId).toBe(call?.spanContext().spanId);
  });

  it("ends in error with the error's type when every run failed", async () => {
    const p = make({ name: "orders-db", retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 2 } } });
    await expect(p.execute(query(5))).rejects.toMatchObject({ code: "WEFT_ERR_ATTEMPTS" });
    const call = exporter.getFinishedSpans().find((s) => s.instrumentationScope.name === "weft");
    expect(call?.status.code).toBe(SpanStatusCode.ERROR);
    expect(call?.attributes).toMatchObject({ "weft.attempts": 2, "error.type": "WEFT_ERR_ATTEMPTS" });
  });

  it("is not made with tracing: false; the function's spans keep the caller's parent", async () => {
    const p = make({ name: "orders-db", tracing: false });
    const parent = trace.getTracer("app").startSpan("handler");
    await context.with(trace.setSpan(context.active(), parent), () => p.execute(query(0)));
    parent.end();
    const all = exporter.getFinishedSpans();
    expect(all.filter((s) => s.instrumentationScope.name === "weft")).toHaveLength(0);
    expect(all.find((s) => s.name === "SELECT orders")?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it("rejects a tracing option that is not a boolean, as a client does", () => {
    expect(() => policy({ tracing: "yes" as unknown as boolean })).toThrow(/tracing.*true or false/);
  });
});

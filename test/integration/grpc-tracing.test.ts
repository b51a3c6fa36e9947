/**
 * gRPC calls in the spans and the metrics (the real OpenTelemetry SDKs, in-memory exporter and a
 * manual reader): the RPC semantic conventions (`rpc.system`, `rpc.service`, `rpc.method`,
 * `rpc.grpc.status_code`) instead of HTTP's, and the trace context reaching the server as metadata.
 */
import * as grpc from "@grpc/grpc-js";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticDiscovery } from "weft";
import { grpcClient, type GrpcServiceClient, type GrpcUnaryMethod } from "weft/grpc";
import type { Histogram, MetricData } from "@opentelemetry/sdk-metrics";
import { loadEcho, reply, startEchoServer, status, type EchoServer } from "../helpers/grpc.js";
import { metric, points, testMeters } from "../helpers/metrics.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let s: EchoServer;
const traceparents: string[] = [];
let calls = 0;

describe("a gRPC call's spans", () => {
  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    s = await startEchoServer({
      Get: (call, callback) => {
        traceparents.push(String(call.metadata.get("traceparent")[0]));
        if (++calls === 1) callback(status(grpc.status.UNAVAILABLE, "once"));
        else callback(null, reply(call.request));
      },
    });
  });
  afterAll(async () => {
    await s.close();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("follow the RPC conventions: a call span, an attempt span per try with its status code", async () => {
    const c = grpcClient<{ get: GrpcUnaryMethod }>(loadEcho(), {
      service: "echo",
      discovery: staticDiscovery([s.url]),
    });
    await c.get({ text: "traced" });
    await c.close();
    const spans = exporter.getFinishedSpans();
    const call = spans.find((x) => x.kind === SpanKind.INTERNAL);
    const attempts = spans.filter((x) => x.kind === SpanKind.CLIENT);
    expect(call?.name).toBe("echo weft.test.Echo/Get");
    expect(call?.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "weft.test.Echo",
      "rpc.method": "Get",
      "rpc.grpc.status_code": 0,
      "weft.attempts": 2,
    });
    expect(call?.attributes["http.request.method"]).toBeUndefined();
    expect(attempts.map((a) => a.name)).toEqual(["weft.test.Echo/Get", "weft.test.Echo/Get"]);
    expect(attempts.map((a) => a.attributes["rpc.grpc.status_code"])).toEqual([14, 0]);
    expect(attempts[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[1]?.attributes["previous-rpc-attempts"]).toBe(1);
    expect(attempts[1]?.attributes["server.port"]).toBe(s.port);
    // Each attempt's context went out as metadata: the server saw the attempt spans' ids.
    expect(traceparents.map((t) => t.split("-")[2])).toEqual(attempts.map((a) => a.spanContext().spanId));
  });
});

describe("a gRPC client's metrics", () => {
  it("record each attempt in rpc.client.duration (ms) by the RPC conventions, never in the HTTP histogram", async () => {
    let gets = 0;
    const server = await startEchoServer({
      Get: (call, callback) => {
        if (++gets === 1) callback(status(grpc.status.UNAVAILABLE, "once"));
        else callback(null, reply(call.request));
      },
      Put: (_call, callback) => callback(status(grpc.status.NOT_FOUND, "no such item")),
    });
    // A port nothing listens on: the attempt fails before any connection, with no gRPC status.
    const gone = await startEchoServer({});
    const goneUrl = gone.url;
    await gone.close();
    const meters = testMeters();
    const c = grpcClient<{ get: GrpcUnaryMethod; put: GrpcUnaryMethod }>(loadEcho(), {
      service: "echo",
      discovery: staticDiscovery([server.url]),
      metrics: { meterProvider: meters.provider },
    });
    const down = grpcClient<{ get: GrpcUnaryMethod }>(loadEcho(), {
      service: "echo-down",
      discovery: staticDiscovery([goneUrl]),
      metrics: { meterProvider: meters.provider },
    });
    try {
      await c.get({ text: "a" }); // UNAVAILABLE, then OK
      await expect(c.put({ text: "b" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await expect(down.get({ text: "c" })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const collected = await meters.collect();
      expect(collected.map((m) => m.descriptor.name)).not.toContain("http.client.request.duration");
      expect(metric(collected, "rpc.client.duration").descriptor.unit).toBe("ms");
      const seen = points(collected, "rpc.client.duration").map((p) => ({
        service: p.attributes["weft.service"],
        method: p.attributes["rpc.method"],
        code: p.attributes["rpc.grpc.status_code"],
        error: p.attributes["error.type"],
        count: (p.value as Histogram).count,
      }));
      expect(seen).toEqual(
        expect.arrayContaining([
          { service: "echo", method: "Get", code: 14, error: "14", count: 1 },
          { service: "echo", method: "Get", code: 0, error: undefined, count: 1 },
          { service: "echo", method: "Put", code: 5, error: "5", count: 1 },
        ]),
      );
      const failed = seen.filter((p) => p.service === "echo-down");
      expect(failed).toHaveLength(1);
      expect(failed[0]?.code).toBeUndefined();
      expect(failed[0]?.error).toBe("ECONNREFUSED");
      const [point] = points(collected, "rpc.client.duration");
      expect(point?.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "weft.test.Echo" });
      expect(point?.attributes["server.address"]).toBe("127.0.0.1");
    } finally {
      await c.close();
      await down.close();
      await server.close();
      await meters.provider.shutdown();
    }
  });
});

describe("OTEL_SEMCONV_STABILITY_OPT_IN", () => {
  // Its own provider: the first block's was shut down with it.
  const spans = new InMemorySpanExporter();
  const tracing = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });

  /** One call that fails once (UNAVAILABLE) then answers, with the variable set while the client is made. */
  async function withOptIn(optIn: string): Promise<{ attempts: ReadableSpan[]; collected: readonly MetricData[] }> {
    let gets = 0;
    const server = await startEchoServer({
      Get: (call, callback) => {
        if (++gets === 1) callback(status(grpc.status.UNAVAILABLE, "once"));
        else callback(null, reply(call.request));
      },
    });
    const meters = testMeters();
    const before = process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
    process.env.OTEL_SEMCONV_STABILITY_OPT_IN = optIn;
    let c: GrpcServiceClient<{ get: GrpcUnaryMethod }>;
    try {
      c = grpcClient<{ get: GrpcUnaryMethod }>(loadEcho(), {
        service: "echo",
        discovery: staticDiscovery([server.url]),
        metrics: { meterProvider: meters.provider },
      });
    } finally {
      if (before === undefined) delete process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
      else process.env.OTEL_SEMCONV_STABILITY_OPT_IN = before;
    }
    spans.reset();
    try {
      await c.get({ text: "x" });
      return {
        attempts: spans.getFinishedSpans().filter((x) => x.kind === SpanKind.CLIENT),
        collected: await meters.collect(),
      };
    } finally {
      await c.close();
      await server.close();
      await meters.provider.shutdown();
    }
  }

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(tracing);
  });
  afterAll(async () => {
    await tracing.shutdown();
    trace.disable();
    context.disable();
  });

  it("rpc: the newer RPC conventions in spans and metrics (rpc.system.name, the full method, status names, seconds)", async () => {
    const { attempts, collected } = await withOptIn("http,rpc");
    expect(attempts.map((a) => a.attributes)).toEqual([
      expect.objectContaining({
        "rpc.system.name": "grpc",
        "rpc.method": "weft.test.Echo/Get",
        "rpc.response.status_code": "UNAVAILABLE",
        "error.type": "UNAVAILABLE",
      }),
      expect.objectContaining({ "rpc.response.status_code": "OK" }),
    ]);
    for (const a of attempts) {
      expect(a.attributes["rpc.system"]).toBeUndefined();
      expect(a.attributes["rpc.grpc.status_code"]).toBeUndefined();
    }
    const names = collected.map((m) => m.descriptor.name);
    expect(names).toContain("rpc.client.call.duration");
    expect(names).not.toContain("rpc.client.duration");
    expect(metric(collected, "rpc.client.call.duration").descriptor.unit).toBe("s");
    const statuses = points(collected, "rpc.client.call.duration").map((p) => p.attributes["rpc.response.status_code"]);
    expect(statuses.sort()).toEqual(["OK", "UNAVAILABLE"]);
  });

  it("rpc/dup: both — each histogram with its own attributes, the spans with both sets (the newer rpc.method)", async () => {
    const { attempts, collected } = await withOptIn("rpc/dup");
    expect(attempts[0]?.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.system.name": "grpc",
      "rpc.service": "weft.test.Echo",
      "rpc.method": "weft.test.Echo/Get",
      "rpc.grpc.status_code": 14,
      "rpc.response.status_code": "UNAVAILABLE",
    });
    const legacy = points(collected, "rpc.client.duration");
    const stable = points(collected, "rpc.client.call.duration");
    expect(legacy.map((p) => p.attributes["rpc.grpc.status_code"]).sort()).toEqual([0, 14]);
    expect(legacy.every((p) => p.attributes["rpc.method"] === "Get")).toBe(true);
    expect(stable.every((p) => p.attributes["rpc.method"] === "weft.test.Echo/Get")).toBe(true);
  });
});

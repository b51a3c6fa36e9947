/**
 * gRPC calls in the spans (real OpenTelemetry SDK, in-memory exporter): the RPC semantic
 * conventions (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`) instead of
 * HTTP's, and the trace context reaching the server as metadata.
 */
import * as grpc from "@grpc/grpc-js";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticDiscovery } from "weft";
import { grpcClient, type GrpcUnaryMethod } from "weft/grpc";
import { loadEcho, reply, startEchoServer, status, type EchoServer } from "../helpers/grpc.js";

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

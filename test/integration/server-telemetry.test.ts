/**
 * weft/server with the real OpenTelemetry SDKs: the SERVER span continues the caller's trace
 * (W3C traceparent, baggage) and parents the handler's own weft calls; with OpenTelemetry's http
 * instrumentation active, weft adds no second SERVER span; `http.server.request.duration` and the
 * server counters are recorded with bounded attributes.
 */
import { createRequire } from "node:module";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { request as undiciRequest } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, staticDiscovery } from "weft";
import { inbound, type InboundOptions } from "weft/server";
import { testMeters, points } from "../helpers/metrics.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
// The http module as CommonJS code gets it: the instrumentation patches it on require.
const nodeHttp = createRequire(import.meta.url)("node:http") as typeof http;

const closers: (() => Promise<void> | void)[] = [];
async function serve(
  options: Partial<InboundOptions>,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => unknown,
  httpModule = nodeHttp,
) {
  const ib = inbound({ service: "orders", onWarning: () => {}, ...options });
  const server = httpModule.createServer(ib.handler(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(async () => {
    await ib.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, inbound: ib };
}

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  exporter.reset();
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();

describe("the SERVER span", () => {
  it("continues the caller's trace, carries semconv attributes, and parents the handler's weft calls", async () => {
    const downstream = await serve({ service: "inventory" }, (_req, res) => res.end("7"));
    const inventory = createClient({ service: "inventory", discovery: staticDiscovery([downstream.url]) });
    const orders = await serve({ route: () => "/orders/:id" }, async (req, res) => {
      const baggage = propagation.getActiveBaggage()?.getEntry("tenant")?.value;
      const stock = await (await inventory.request({ path: "/stock" })).text();
      res.end(JSON.stringify({ stock, baggage, ua: req.headers["user-agent"] }));
    });
    const caller = createClient({ service: "orders", discovery: staticDiscovery([orders.url]) });
    const bag = propagation.createBaggage({ tenant: { value: "acme" } });
    const body = await context.with(propagation.setBaggage(context.active(), bag), async () =>
      (await caller.request({ path: "/orders/42?expand=1" })).json(),
    );
    expect(body).toMatchObject({ stock: "7", baggage: "acme" });
    await caller.close();
    await inventory.close();

    const all = spans();
    const servers = all.filter((s) => s.kind === SpanKind.SERVER);
    expect(servers).toHaveLength(2);
    const ordersSpan = servers.find((s) => s.attributes["http.route"] === "/orders/:id")!;
    expect(ordersSpan.name).toBe("GET /orders/:id");
    expect(ordersSpan.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/orders/42",
      "url.query": "expand=1",
      "url.scheme": "http",
      "server.address": "127.0.0.1",
      "network.peer.address": "127.0.0.1",
      "http.response.status_code": 200,
    });
    // Its parent is the caller's attempt span: one trace across the hop.
    const callerAttempt = all.find(
      (s) => s.kind === SpanKind.CLIENT && s.attributes["url.full"] === `${orders.url}/orders/42?expand=1`,
    )!;
    expect(ordersSpan.parentSpanContext?.spanId).toBe(callerAttempt.spanContext().spanId);
    expect(ordersSpan.spanContext().traceId).toBe(callerAttempt.spanContext().traceId);
    // The handler's own weft call is inside the SERVER span, and the downstream SERVER span under it.
    const inventoryCall = all.find((s) => s.kind === SpanKind.INTERNAL && s.name === "inventory GET")!;
    expect(inventoryCall.parentSpanContext?.spanId).toBe(ordersSpan.spanContext().spanId);
    const inventorySpan = servers.find((s) => s !== ordersSpan)!;
    expect(inventorySpan.spanContext().traceId).toBe(ordersSpan.spanContext().traceId);
  });

  it("marks 5xx as an error and a caller that went away as aborted, and a 4xx as no error", async () => {
    const s = await serve({}, (req, res) => {
      if (req.url === "/hang") return;
      res.statusCode = req.url === "/bad" ? 502 : 404;
      res.end();
    });
    await (await undiciRequest(s.url + "/bad")).body.dump();
    await (await undiciRequest(s.url + "/missing")).body.dump();
    const controller = new AbortController();
    const hanging = undiciRequest(s.url + "/hang", { signal: controller.signal }).catch(() => undefined);
    await expect.poll(() => s.inbound.snapshot().inflight).toBe(1);
    controller.abort();
    await hanging;
    await expect.poll(() => spans().length).toBe(3);
    const byPath = (p: string) => spans().find((x) => x.attributes["url.path"] === p)!;
    expect(byPath("/bad").status.code).toBe(SpanStatusCode.ERROR);
    expect(byPath("/bad").attributes["error.type"]).toBe("502");
    expect(byPath("/missing").status.code).toBe(SpanStatusCode.UNSET);
    expect(byPath("/hang").attributes["error.type"]).toBe("aborted");
  });

  it("makes no span with tracing: false", async () => {
    const s = await serve({ tracing: false }, (_req, res) => res.end());
    await (await undiciRequest(s.url)).body.dump();
    expect(spans()).toEqual([]);
  });
});

describe("beside OpenTelemetry's http instrumentation", () => {
  it("adds no second SERVER span: the instrumentation's is the handler's context", async () => {
    const instrumentation = new HttpInstrumentation();
    instrumentation.setTracerProvider(provider);
    instrumentation.enable();
    try {
      const patched = createRequire(import.meta.url)("node:http") as typeof http;
      const downstream = await serve({ service: "inventory", tracing: false }, (_req, res) => res.end("ok"), patched);
      const inventory = createClient({ service: "inventory", discovery: staticDiscovery([downstream.url]) });
      const s = await serve(
        {},
        async (_req, res) => res.end(await (await inventory.request({ path: "/" })).text()),
        patched,
      );
      await (await undiciRequest(s.url + "/x")).body.dump();
      await inventory.close();
      await expect.poll(() => spans().filter((x) => x.kind === SpanKind.SERVER).length).toBe(2);
      const servers = spans().filter((x) => x.kind === SpanKind.SERVER);
      // Both SERVER spans are the instrumentation's; weft made none.
      expect(servers.every((x) => x.instrumentationScope.name === "@opentelemetry/instrumentation-http")).toBe(true);
      const outer = servers.find(
        (x) => x.attributes["url.path"] === "/x" || String(x.attributes["http.target"]).startsWith("/x"),
      )!;
      const call = spans().find((x) => x.kind === SpanKind.INTERNAL && x.name === "inventory GET")!;
      expect(call.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    } finally {
      instrumentation.disable();
    }
  });
});

describe("server metrics", () => {
  it("records http.server.request.duration per request and counts sheds, decisions and refused deadlines", async () => {
    const meters = testMeters();
    const release: (() => void)[] = [];
    const s = await serve(
      {
        metrics: { meterProvider: meters.provider },
        shed: { limit: 1 },
        route: (req) => (req.url?.startsWith("/orders/") ? "/orders/:id" : undefined),
        identity: { header: "x-weft-peer-identity", trustedProxies: ["127.0.0.1"] },
        authz: {
          rules: [{ paths: ["/orders/:id"] }, { paths: ["/admin/*"], from: ["spiffe://example.org/ns/ops/*"] }],
        },
      },
      (req, res) => {
        if (req.url === "/orders/hold") release.push(() => res.end());
        else res.end();
      },
    );
    await (await undiciRequest(s.url + "/orders/1")).body.dump();
    await (await undiciRequest(s.url + "/orders/2")).body.dump();
    const held = undiciRequest(s.url + "/orders/hold").then((r) => r.body.dump());
    await expect.poll(() => release.length).toBe(1);
    expect((await undiciRequest(s.url + "/orders/3")).statusCode).toBe(503);
    await (await undiciRequest(s.url + "/admin/x")).body.dump();
    await (await undiciRequest(s.url + "/orders/4", { headers: { "x-weft-timeout-ms": "0" } })).body.dump();
    const collectedWhileHeld = await meters.collect();
    expect(points(collectedWhileHeld, "http.server.active_requests")[0]!.value).toBe(1);
    expect(points(collectedWhileHeld, "weft.server.concurrency.limit")[0]!.value).toBe(1);
    release[0]!();
    await held;

    const collected = await meters.collect();
    const durations = points(collected, "http.server.request.duration");
    expect(durations).toHaveLength(1);
    expect(durations[0]!.attributes).toEqual({
      "weft.service": "orders",
      "http.request.method": "GET",
      "http.response.status_code": 200,
      "url.scheme": "http",
      "http.route": "/orders/:id",
    });
    expect((durations[0]!.value as { count: number }).count).toBe(3);
    expect(points(collected, "weft.server.shed")[0]).toMatchObject({
      attributes: { "weft.priority": "normal" },
      value: 1,
    });
    const decisions = Object.fromEntries(
      points(collected, "weft.server.authz").map((p) => [p.attributes["weft.authz.decision"], p.value]),
    );
    expect(decisions).toEqual({ allow: 4, unauthenticated: 1 });
    expect(points(collected, "weft.server.deadline.refused")[0]).toMatchObject({
      attributes: { "weft.deadline.refusal": "expired" },
      value: 1,
    });
    await meters.provider.shutdown();
  });
});

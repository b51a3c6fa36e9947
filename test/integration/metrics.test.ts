/**
 * Metrics with the real OpenTelemetry metrics SDK over real HTTP: a client's attempts, retries
 * and calls as the SDK collects them, attributed to the endpoint that answered and never to a path.
 */
import { metrics } from "@opentelemetry/api";
import type { Histogram } from "@opentelemetry/sdk-metrics";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, staticDiscovery, type Client, type ClientOptions } from "weft";
import { metric, points, testMeters, valueOf } from "../helpers/metrics.js";
import { scoped, server } from "../helpers/scope.js";

afterEach(() => metrics.disable());

function client(url: string, service = "catalog", extra: Partial<ClientOptions> = {}): Client {
  return scoped(
    createClient({
      service,
      discovery: staticDiscovery([url]),
      retry: { maxAttempts: 3, backoff: { baseMs: 1, maxMs: 2 } },
      ...extra,
    }),
  );
}

describe("client metrics with the OpenTelemetry SDK", () => {
  it("records every attempt of three calls, one retried after a 503, with the endpoint's address and port", async () => {
    let failNext = true;
    const s = await server((req, res) => {
      // The first request to /flaky fails once; its retry succeeds.
      res.statusCode = req.url?.startsWith("/flaky") === true && failNext ? 503 : 200;
      if (req.url?.startsWith("/flaky") === true) failNext = false;
      res.end("ok");
    });
    const meters = testMeters();
    const c = client(s.url, "catalog", { metrics: { meterProvider: meters.provider } });

    for (const path of ["/v1/items/1", "/flaky/2", "/v1/items/3?user=7"]) {
      const r = await c.request({ path });
      expect(r.status).toBe(200);
      await r.text();
    }
    const collected = await meters.collect();

    const attempts = points(collected, "http.client.request.duration");
    expect(attempts.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(4);
    for (const p of attempts) {
      expect(p.attributes).toMatchObject({
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": s.port,
        "weft.service": "catalog",
      });
    }
    const failed = valueOf(collected, "http.client.request.duration", {
      "http.response.status_code": 503,
    }) as Histogram;
    expect(failed.count).toBe(1);
    expect(
      (valueOf(collected, "http.client.request.duration", { "http.response.status_code": 200 }) as Histogram).count,
    ).toBe(3);
    // Loopback answers in well under a second: the histogram is in seconds, not milliseconds.
    expect(failed.sum).toBeLessThan(1);
    expect(metric(collected, "http.client.request.duration").descriptor.unit).toBe("s");

    expect(valueOf(collected, "weft.client.retries", { "weft.service": "catalog", "error.type": "503" })).toBe(1);
    expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "success" })).toBe(3);
    expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "healthy" })).toBe(1);
    expect(valueOf(collected, "weft.client.inflight", { "weft.service": "catalog" })).toBe(0);
    expect(valueOf(collected, "weft.client.discovery.stale", {})).toBe(0);
    expect(JSON.stringify(collected)).not.toMatch(/v1\/items|flaky|user=7/);
  });

  it("records an attempt that never reached a server by its error code", async () => {
    const s = await server();
    const url = s.url;
    await s.close();
    const meters = testMeters();
    const c = scoped(
      createClient({
        service: "gone",
        discovery: staticDiscovery([url]),
        retry: false,
        breaker: false,
        metrics: { meterProvider: meters.provider },
      }),
    );
    await expect(c.request({ path: "/" })).rejects.toThrow();
    const collected = await meters.collect();
    const [attempt] = points(collected, "http.client.request.duration");
    expect(attempt?.attributes["error.type"]).toBe("ECONNREFUSED");
    expect(attempt?.attributes["http.response.status_code"]).toBeUndefined();
    expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "failure" })).toBe(1);
  });

  it("follows the global meter provider registered before the client", async () => {
    const s = await server();
    const meters = testMeters();
    metrics.setGlobalMeterProvider(meters.provider);
    const c = client(s.url, "global");
    await (await c.request({ path: "/" })).text();
    const collected = await meters.collect();
    expect((valueOf(collected, "http.client.request.duration", { "weft.service": "global" }) as Histogram).count).toBe(
      1,
    );
    expect(valueOf(collected, "weft.client.calls", { "weft.service": "global", "weft.outcome": "success" })).toBe(1);
  });

  it("records nothing with metrics: false, even with a provider registered", async () => {
    const s = await server();
    const meters = testMeters();
    metrics.setGlobalMeterProvider(meters.provider);
    const c = client(s.url, "off", { metrics: false });
    await (await c.request({ path: "/" })).text();
    const collected = await meters.collect();
    expect(JSON.stringify(collected)).not.toContain('"off"');
  });

  it("rejects a meterProvider that is not one, naming the option", () => {
    expect(() =>
      createClient({
        service: "bad",
        discovery: staticDiscovery(["http://127.0.0.1:1"]),
        metrics: { meterProvider: {} as never },
      }),
    ).toThrow(/metrics\.meterProvider.*MeterProvider/);
  });
});

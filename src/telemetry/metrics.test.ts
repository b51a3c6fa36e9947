import { metrics, type Meter, type MeterProvider } from "@opentelemetry/api";
import type { Histogram } from "@opentelemetry/sdk-metrics";
import { afterEach, describe, expect, it, vi } from "vitest";
import { metric, points, testMeters, valueOf } from "../../test/helpers/metrics.js";
import { CHANNELS, ClientEventHub, type AttemptEndEvent } from "../core/events.js";
import { clientMetrics, weftMeter, type MetricsSnapshot } from "./metrics.js";
import { DURATION_BUCKETS_S, METER_NAME, METER_VERSION } from "./metrics-instruments.js";

const ENDPOINT = "http://127.0.0.1:8081";

function attemptEnd(over: Partial<AttemptEndEvent> = {}): AttemptEndEvent {
  return {
    service: "catalog",
    method: "GET",
    path: "/v1/items/42?user=7",
    endpoint: ENDPOINT,
    attempt: 0,
    status: 200,
    error: undefined,
    outcome: "success",
    durationMs: 12,
    ...over,
  };
}

const SNAPSHOT: MetricsSnapshot = {
  counters: { inflight: 3, successes: 40, failures: 2, ignorable: 1, timeouts: 1 },
  endpoints: [
    { url: "http://127.0.0.1:8081", state: "healthy", inflight: 2, breaker: "closed" },
    { url: "http://127.0.0.1:8082", state: "ejected", inflight: 1, breaker: "open" },
  ],
  limits: { concurrency: { queued: 5, limit: 64 } },
  retryBudget: 12.5,
  discovery: { stale: true },
};

function setup(snapshot: MetricsSnapshot = SNAPSHOT) {
  const hub = new ClientEventHub();
  const meters = testMeters();
  let reads = 0;
  const dispose = clientMetrics({
    service: "catalog",
    events: hub.api,
    snapshot: () => {
      reads++;
      return snapshot;
    },
    meterProvider: meters.provider,
  });
  if (dispose === null) throw new Error("expected metrics to be on with an SDK meter provider");
  return { hub, dispose, collect: meters.collect, reads: () => reads };
}

function emitters(hub: ClientEventHub): boolean[] {
  const all = hub.emitters();
  // One per channel: an empty list would make "none is active" pass without checking anything.
  expect(all).toHaveLength(Object.keys(CHANNELS).length);
  return all.map((e) => e.active);
}

afterEach(() => metrics.disable());

describe("without a meter provider", () => {
  it("returns null and subscribes to no event when the global provider is the API's no-op", () => {
    const hub = new ClientEventHub();
    expect(weftMeter()).toBeNull();
    expect(clientMetrics({ service: "catalog", events: hub.api, snapshot: () => SNAPSHOT })).toBeNull();
    expect(emitters(hub).every((active) => !active)).toBe(true);
  });

  it("treats a no-op provider from another copy of the API as none", () => {
    class NoopMeter {}
    const otherCopy: MeterProvider = { getMeter: () => new NoopMeter() as unknown as Meter };
    const hub = new ClientEventHub();
    expect(
      clientMetrics({ service: "catalog", events: hub.api, snapshot: () => SNAPSHOT, meterProvider: otherCopy }),
    ).toBeNull();
    expect(hub.attemptEnd.active).toBe(false);
  });

  it("uses the global provider once an SDK registers it", async () => {
    const meters = testMeters();
    metrics.setGlobalMeterProvider(meters.provider);
    const hub = new ClientEventHub();
    const dispose = clientMetrics({ service: "catalog", events: hub.api, snapshot: () => SNAPSHOT });
    expect(dispose).not.toBeNull();
    hub.attemptEnd.emit(attemptEnd());
    expect((points(await meters.collect(), "http.client.request.duration")[0]?.value as Histogram).count).toBe(1);
    dispose?.();
  });
});

describe("http.client.request.duration", () => {
  it("records each attempt in seconds with the semconv attributes, never the path", async () => {
    const { hub, collect } = setup();
    hub.attemptEnd.emit(attemptEnd({ durationMs: 12 }));
    hub.attemptEnd.emit(attemptEnd({ durationMs: 8, attempt: 1 }));
    const collected = await collect();
    const duration = metric(collected, "http.client.request.duration");
    expect(duration.descriptor.unit).toBe("s");
    expect(duration.dataPoints).toHaveLength(1);
    const point = duration.dataPoints[0]!;
    expect(point.attributes).toEqual({
      "http.request.method": "GET",
      "server.address": "127.0.0.1",
      "server.port": 8081,
      "http.response.status_code": 200,
      "weft.service": "catalog",
    });
    const histogram = point.value as Histogram;
    expect(histogram.count).toBe(2);
    expect(histogram.sum).toBeCloseTo(0.02, 6);
    expect(histogram.buckets.boundaries).toEqual(DURATION_BUCKETS_S);
    expect(JSON.stringify(collected)).not.toContain("/v1/items");
  });

  it("names an error status or the error's code in error.type, and sends no status without a response", async () => {
    const { hub, collect } = setup();
    hub.attemptEnd.emit(attemptEnd({ status: 503, outcome: "retryable" }));
    hub.attemptEnd.emit(
      attemptEnd({
        status: undefined,
        error: Object.assign(new Error("refused"), { code: "ECONNREFUSED" }),
        outcome: "retryable",
      }),
    );
    const collected = await collect();
    expect(
      valueOf(collected, "http.client.request.duration", { "http.response.status_code": 503, "error.type": "503" }),
    ).toBeDefined();
    const refused = points(collected, "http.client.request.duration").find(
      (p) => p.attributes["error.type"] === "ECONNREFUSED",
    );
    expect(refused?.attributes["http.response.status_code"]).toBeUndefined();
  });

  it("reports an unknown method as _OTHER and an IPv6 host without brackets", async () => {
    const { hub, collect } = setup();
    hub.attemptEnd.emit(attemptEnd({ method: "PURGE", endpoint: "http://[::1]:9000" }));
    const [point] = points(await collect(), "http.client.request.duration");
    expect(point?.attributes).toMatchObject({
      "http.request.method": "_OTHER",
      "server.address": "::1",
      "server.port": 9000,
    });
  });

  it("bounds error.type: past 64 distinct error codes, the rest are _OTHER", async () => {
    const { hub, collect } = setup();
    for (let i = 0; i < 70; i++)
      hub.attemptEnd.emit(
        attemptEnd({ status: undefined, error: Object.assign(new Error("x"), { code: `E${i}` }), outcome: "failure" }),
      );
    const types = new Set(
      points(await collect(), "http.client.request.duration").map((p) => p.attributes["error.type"]),
    );
    expect(types.size).toBe(65);
    expect(types.has("_OTHER")).toBe(true);
  });
});

describe("decision counters", () => {
  it("counts retries by reason, hedges, budget refusals, limits, breaker transitions and ejections", async () => {
    const { hub, collect } = setup();
    const call = { service: "catalog", method: "GET", path: "/v1/items/42" };
    hub.retry.emit({ ...call, attempt: 1, reason: "503", delayMs: 20 });
    hub.retry.emit({ ...call, attempt: 2, reason: "503", delayMs: 40 });
    hub.hedge.emit({ ...call, attempt: 1, afterMs: 50 });
    hub.budgetExhausted.emit({ ...call, attempts: 3, kind: "retry" });
    hub.limited.emit({ ...call, kind: "concurrency", reason: "queue full" });
    hub.breakerStateChange.emit({ service: "catalog", endpoint: ENDPOINT, from: "closed", to: "open" });
    hub.endpointHealth.emit({
      service: "catalog",
      endpoint: ENDPOINT,
      kind: "ejected",
      reason: "consecutive",
      ejectionMs: 30_000,
    });
    hub.endpointHealth.emit({ service: "catalog", endpoint: ENDPOINT, kind: "returned" });
    const collected = await collect();
    expect(valueOf(collected, "weft.client.retries", { "weft.service": "catalog", "error.type": "503" })).toBe(2);
    expect(valueOf(collected, "weft.client.hedges", { "weft.service": "catalog" })).toBe(1);
    expect(valueOf(collected, "weft.client.budget_exhausted", { "weft.budget.kind": "retry" })).toBe(1);
    expect(valueOf(collected, "weft.client.limited", { "weft.limit.kind": "concurrency" })).toBe(1);
    expect(points(collected, "weft.client.breaker.transitions")[0]?.attributes).toEqual({
      "weft.service": "catalog",
      "server.address": "127.0.0.1",
      "server.port": 8081,
      "weft.breaker.state": "open",
    });
    expect(
      valueOf(collected, "weft.client.endpoint.ejections", {
        "server.port": 8081,
        "weft.ejection.reason": "consecutive",
      }),
    ).toBe(1);
  });
});

describe("gauges", () => {
  it("reads the snapshot once per collection", async () => {
    const { collect, reads } = setup();
    const collected = await collect();
    expect(reads()).toBe(1);
    expect(metric(collected, "weft.client.calls").descriptor.unit).toBe("{call}");
    expect(valueOf(collected, "weft.client.calls", { "weft.service": "catalog", "weft.outcome": "success" })).toBe(40);
    expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "failure" })).toBe(2);
    expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "ignorable" })).toBe(1);
    expect(valueOf(collected, "weft.client.timeouts", {})).toBe(1);
    expect(valueOf(collected, "weft.client.inflight", { "weft.service": "catalog" })).toBe(3);
    expect(valueOf(collected, "weft.client.endpoint.inflight", { "server.port": 8082 })).toBe(1);
    expect(valueOf(collected, "weft.client.queue_depth", {})).toBe(5);
    expect(valueOf(collected, "weft.client.concurrency.limit", {})).toBe(64);
    expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "healthy" })).toBe(1);
    expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "ejected" })).toBe(1);
    expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "draining" })).toBe(0);
    expect(valueOf(collected, "weft.client.breakers.open", {})).toBe(1);
    expect(valueOf(collected, "weft.client.retry_budget", {})).toBe(12.5);
    expect(valueOf(collected, "weft.client.discovery.stale", {})).toBe(1);
    expect(metric(collected, "weft.client.endpoints").descriptor.unit).toBe("{endpoint}");
  });

  it("leaves out the queue and the budget when the client has no limit and no budget", async () => {
    const { collect } = setup({ ...SNAPSHOT, limits: { concurrency: null }, retryBudget: null });
    const names = (await collect()).filter((m) => m.dataPoints.length > 0).map((m) => m.descriptor.name);
    expect(names).not.toContain("weft.client.queue_depth");
    expect(names).not.toContain("weft.client.retry_budget");
    expect(names).toContain("weft.client.inflight");
  });
});

describe("the disposer", () => {
  it("unsubscribes every event and stops reading the snapshot", async () => {
    const { hub, dispose, collect, reads } = setup();
    hub.attemptEnd.emit(attemptEnd());
    await collect();
    dispose();
    dispose();
    expect(emitters(hub).every((active) => !active)).toBe(true);
    hub.attemptEnd.emit(attemptEnd());
    const collected = await collect();
    expect(reads()).toBe(1);
    expect((points(collected, "http.client.request.duration")[0]?.value as Histogram).count).toBe(1);
  });

  it("lets two clients share the instruments and keeps their series apart", async () => {
    const hub = new ClientEventHub();
    const other = new ClientEventHub();
    const meters = testMeters();
    const a = clientMetrics({
      service: "catalog",
      events: hub.api,
      snapshot: () => SNAPSHOT,
      meterProvider: meters.provider,
    });
    const b = clientMetrics({
      service: "orders",
      events: other.api,
      snapshot: () => ({ ...SNAPSHOT, counters: { ...SNAPSHOT.counters, inflight: 9 } }),
      meterProvider: meters.provider,
    });
    hub.attemptEnd.emit(attemptEnd());
    other.attemptEnd.emit(attemptEnd({ service: "orders" }));
    other.attemptEnd.emit(attemptEnd({ service: "orders" }));
    const collected = await meters.collect();
    expect((valueOf(collected, "http.client.request.duration", { "weft.service": "catalog" }) as Histogram).count).toBe(
      1,
    );
    expect((valueOf(collected, "http.client.request.duration", { "weft.service": "orders" }) as Histogram).count).toBe(
      2,
    );
    expect(valueOf(collected, "weft.client.inflight", { "weft.service": "catalog" })).toBe(3);
    expect(valueOf(collected, "weft.client.inflight", { "weft.service": "orders" })).toBe(9);
    a?.();
    b?.();
  });

  it("sums two clients of the same service instead of letting one overwrite the other", async () => {
    const meters = testMeters();
    const add = (inflight: number, successes: number) =>
      clientMetrics({
        service: "catalog",
        events: new ClientEventHub().api,
        snapshot: () => ({ ...SNAPSHOT, counters: { ...SNAPSHOT.counters, inflight, successes } }),
        meterProvider: meters.provider,
      });
    const a = add(3, 40);
    const b = add(9, 2);
    for (let round = 0; round < 3; round++) {
      // Observed again and again with no new call, the count stays put.
      const collected = await meters.collect();
      expect(valueOf(collected, "weft.client.inflight", { "weft.service": "catalog" })).toBe(12);
      expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "success" })).toBe(42);
      expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "healthy" })).toBe(2);
      expect(valueOf(collected, "weft.client.discovery.stale", {})).toBe(1);
    }
    a?.();
    expect(valueOf(await meters.collect(), "weft.client.inflight", {})).toBe(9);
    b?.();
  });

  it("reports a level nobody observes any more as 0 once, then stops calling back", async () => {
    const meters = testMeters();
    let snapshot: MetricsSnapshot = SNAPSHOT;
    let reads = 0;
    const dispose = clientMetrics({
      service: "catalog",
      events: new ClientEventHub().api,
      snapshot: () => {
        reads++;
        return snapshot;
      },
      meterProvider: meters.provider,
    });
    await meters.collect();
    // Discovery dropped :8082.
    snapshot = { ...SNAPSHOT, endpoints: SNAPSHOT.endpoints.slice(0, 1) };
    let collected = await meters.collect();
    expect(valueOf(collected, "weft.client.endpoint.inflight", { "server.port": 8082 })).toBe(0);
    expect(valueOf(collected, "weft.client.endpoint.inflight", { "server.port": 8081 })).toBe(2);
    const meter = meters.provider.getMeter(METER_NAME, METER_VERSION);
    const removed = vi.spyOn(meter, "removeBatchObservableCallback");
    dispose?.();
    expect(removed).not.toHaveBeenCalled();
    collected = await meters.collect();
    expect(reads).toBe(2);
    expect(valueOf(collected, "weft.client.inflight", {})).toBe(0);
    expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "healthy" })).toBe(0);
    // A counter keeps its total.
    expect(valueOf(collected, "weft.client.calls", { "weft.outcome": "success" })).toBe(40);
    await Promise.resolve();
    expect(removed).toHaveBeenCalledTimes(1);
    await meters.collect();
    expect(reads).toBe(2);
  });
});

describe("series keys", () => {
  it("keeps reporting a live series when the instruments observed change between collections (no endpoints, then two)", async () => {
    let snapshot: MetricsSnapshot = {
      ...SNAPSHOT,
      endpoints: [],
      limits: { concurrency: null },
      retryBudget: null,
      discovery: { stale: false },
    };
    const hub = new ClientEventHub();
    const meters = testMeters();
    const dispose = clientMetrics({
      service: "catalog",
      events: hub.api,
      snapshot: () => snapshot,
      meterProvider: meters.provider,
    });
    await meters.collect();
    snapshot = {
      ...snapshot,
      endpoints: [
        { url: "http://127.0.0.1:8081", state: "healthy", inflight: 0, breaker: "closed" },
        { url: "http://127.0.0.1:8082", state: "healthy", inflight: 0, breaker: "closed" },
      ],
      limits: { concurrency: { queued: 0, limit: 8 } },
      retryBudget: 5,
    };
    for (let i = 0; i < 2; i++) {
      const collected = await meters.collect();
      expect(valueOf(collected, "weft.client.endpoints", { "weft.endpoint.state": "healthy" })).toBe(2);
      expect(valueOf(collected, "weft.client.retry_budget", { "weft.service": "catalog" })).toBe(5);
    }
    dispose?.();
  });
});

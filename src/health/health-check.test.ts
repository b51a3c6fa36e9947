import { afterEach, describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { Endpoint, EndpointSet } from "../core/endpoint.js";
import { wheelFor } from "../core/wheel.js";
import { fakeClock } from "../testing/fake-clock.js";
import {
  HEALTH_CHECK_CANCELLED,
  HEALTH_CHECK_TIMED_OUT,
  HealthChecker,
  type HealthCheckProbe,
  type HealthCheckSend,
} from "./health-check.js";
import {
  normalizeHealthCheckOptions,
  type HealthCheckConfig,
  type HealthCheckOptions,
} from "./health-check-options.js";

const open: HealthChecker[] = [];
afterEach(() => {
  for (const checker of open.splice(0)) checker.close();
});

/** How an endpoint answers its checks: a status, an error, a status after a delay, or never. */
type Reply = number | Error | "hang" | { readonly status: number; readonly afterMs: number } | "throw";

/** A checker on a fake clock over `n` endpoints, with a scripted `send`. */
function setup(options: Partial<HealthCheckOptions> = {}, n = 1) {
  const clock = fakeClock();
  const config = normalizeHealthCheckOptions({ path: "/healthz", ...options }) as HealthCheckConfig;
  // A real endpoint set asks the checker (its gate) whenever the checker signals a change.
  const set = new EndpointSet();
  set.update(
    Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:8080` })),
    0,
  );
  const endpoints = set.all;
  const replies = new Map<Endpoint, Reply>();
  const sent: { endpoint: Endpoint; at: number; probe: HealthCheckProbe }[] = [];
  const changes: string[] = [];
  const inFlight = new Map<Endpoint, number>();
  let maxInFlightPerEndpoint = 0;
  const send: HealthCheckSend = (endpoint, probe) => {
    const reply = replies.get(endpoint) ?? 200;
    if (reply === "throw") throw new Error("send failed synchronously");
    sent.push({ endpoint, at: clock.now(), probe });
    const count = (inFlight.get(endpoint) ?? 0) + 1;
    inFlight.set(endpoint, count);
    maxInFlightPerEndpoint = Math.max(maxInFlightPerEndpoint, count);
    return new Promise<number>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        inFlight.set(endpoint, (inFlight.get(endpoint) ?? 1) - 1);
        settle();
      };
      probe.cancel.addEventListener("abort", () => finish(() => reject(probe.cancel.reason)));
      if (reply === "hang") return;
      if (reply instanceof Error) finish(() => reject(reply));
      else if (typeof reply === "number") finish(() => resolve(reply));
      else clock.setTimer(() => finish(() => resolve(reply.status)), reply.afterMs);
    });
  };
  const checker = new HealthChecker(config, {
    clock,
    random: seededRandom(7),
    send,
    onChange: (endpoint, healthy) => {
      changes.push(`${endpoint.hostname} ${healthy ? "healthy" : "unhealthy"} at ${clock.now()}`);
      set.refresh(clock.now());
    },
  });
  set.addGate(checker);
  open.push(checker);
  checker.setEndpoints(endpoints);
  /** Advances time until every endpoint has been checked at least once. */
  const untilEachChecked = async (): Promise<void> => {
    while (new Set(sent.map((s) => s.endpoint)).size < endpoints.length) await clock.advanceAsync(100);
  };
  /** Advances time until `count` checks have been sent in all (and their immediate answers handled). */
  const untilChecks = async (count: number): Promise<void> => {
    for (let i = 0; sent.length < count; i++) {
      if (i > 10_000) throw new Error(`only ${sent.length} checks sent`);
      await clock.advanceAsync(100);
    }
  };
  return {
    clock,
    checker,
    healthy: (e: Endpoint): boolean => checker.isAvailable(e),
    endpoints,
    replies,
    sent,
    changes,
    untilChecks,
    untilEachChecked,
    wheel: wheelFor(clock),
    maxInFlight: () => maxInFlightPerEndpoint,
  };
}

describe("HealthChecker", () => {
  it("marks an endpoint unhealthy after 3 failed checks and healthy after 2 passed ones", async () => {
    const { healthy, endpoints, replies, sent, changes, untilChecks } = setup();
    const [a] = endpoints as [Endpoint];
    replies.set(a, 503);
    await untilChecks(2);
    expect(healthy(a)).toBe(true);
    replies.set(a, new Error("ECONNREFUSED")); // an error is a failed check too
    await untilChecks(3);
    expect(healthy(a)).toBe(false);
    expect(changes).toEqual([`10.0.0.1 unhealthy at ${sent[2]!.at}`]);
    replies.set(a, 204); // any 2xx passes
    await untilChecks(4);
    expect(healthy(a)).toBe(false);
    await untilChecks(5);
    expect(healthy(a)).toBe(true);
    expect(changes).toHaveLength(2);
    expect(changes[1]).toBe(`10.0.0.1 healthy at ${sent[4]!.at}`);
  });

  it("sends the configured request, with a cancellation and the timeout", async () => {
    const { sent, untilChecks } = setup({ method: "HEAD", path: "/ready", timeoutMs: 250 });
    await untilChecks(1);
    expect(sent[0]!.probe).toMatchObject({ method: "HEAD", path: "/ready", timeoutMs: 250 });
    expect(sent[0]!.probe.cancel.aborted).toBe(false);
  });

  it("checks each endpoint about once an interval, staggered across the interval", async () => {
    const { clock, endpoints, sent } = setup({}, 100);
    await clock.advanceAsync(5000);
    expect(sent.length).toBeGreaterThan(30);
    expect(sent.length).toBeLessThan(70);
    await clock.advanceAsync(10_000 - clock.now());
    const firsts = endpoints.map((e) => sent.find((s) => s.endpoint === e)?.at ?? Infinity);
    expect(Math.max(...firsts)).toBeLessThan(10_000); // every endpoint checked within the first interval
    for (let second = 0; second < 10; second++) {
      // Spread over the interval: no burst, no gap.
      const inSecond = firsts.filter((at) => at >= second * 1000 && at < (second + 1) * 1000).length;
      expect(inSecond).toBeGreaterThan(2);
      expect(inSecond).toBeLessThan(25);
    }
    await clock.advanceAsync(60_000 - clock.now());
    for (const endpoint of endpoints) {
      const times = sent.filter((s) => s.endpoint === endpoint).map((s) => s.at);
      expect(times.length).toBeGreaterThanOrEqual(5);
      expect(times.length).toBeLessThanOrEqual(7);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(9000);
    }
  });

  it("runs every endpoint's checks from one timer", async () => {
    const { clock, wheel } = setup({}, 200);
    for (let i = 0; i < 50; i++) {
      await clock.advanceAsync(997);
      expect(wheel.size).toBe(1);
      expect(clock.pendingTimers).toBeLessThanOrEqual(1);
    }
  });

  it("fails a check that outlives its timeout, aborting it, and starts no other meanwhile", async () => {
    const { healthy, clock, endpoints, replies, sent, changes, untilChecks } = setup({ timeoutMs: 1000 });
    const [a] = endpoints as [Endpoint];
    replies.set(a, "hang");
    await untilChecks(1);
    const first = sent[0]!;
    await clock.advanceAsync(first.at + 999 - clock.now());
    expect(first.probe.cancel.aborted).toBe(false);
    expect(sent).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(first.probe.cancel.reason).toBe(HEALTH_CHECK_TIMED_OUT);
    await untilChecks(3);
    await clock.advanceAsync(1000);
    expect(healthy(a)).toBe(false);
    expect(changes).toEqual([`10.0.0.1 unhealthy at ${sent[2]!.at + 1000}`]);
  });

  it("never has two checks in flight to one endpoint, even when answers come late", async () => {
    const { healthy, clock, endpoints, replies, maxInFlight, sent } = setup({ intervalMs: 1000, timeoutMs: 1000 }, 5);
    for (const endpoint of endpoints) replies.set(endpoint, { status: 200, afterMs: 990 });
    await clock.advanceAsync(30_000);
    expect(sent.length).toBeGreaterThan(100);
    expect(maxInFlight()).toBe(1);
    expect(endpoints.every((e) => healthy(e))).toBe(true);
  });

  it("counts a send that throws as a failed check", async () => {
    const { healthy, endpoints, replies, changes, clock } = setup({ unhealthyThreshold: 1 });
    replies.set(endpoints[0]!, "throw");
    await clock.advanceAsync(10_000);
    expect(healthy(endpoints[0]!)).toBe(false);
    expect(changes).toHaveLength(1);
  });

  it("follows discovery: checks new endpoints, stops and aborts checks of removed ones", async () => {
    const { clock, checker, endpoints, replies, sent, untilEachChecked } = setup({}, 2);
    const [a, b] = endpoints as [Endpoint, Endpoint];
    replies.set(a, "hang");
    replies.set(b, "hang");
    await untilEachChecked();
    const c = new Endpoint({ url: "http://10.0.0.3:8080" }, clock.now());
    checker.setEndpoints([b, c]);
    const { probe: aProbe, at: aProbeAt } = sent.filter((s) => s.endpoint === a).at(-1)!;
    expect(aProbe.cancel.reason).toBe(HEALTH_CHECK_CANCELLED);
    await clock.advanceAsync(60_000);
    expect(sent.filter((s) => s.endpoint === a && s.at > aProbeAt)).toHaveLength(0);
    expect(sent.filter((s) => s.endpoint === c).length).toBeGreaterThanOrEqual(5);
  });

  it("ramps an endpoint back in when it turns healthy while a peer serves", async () => {
    const { healthy, endpoints, replies, sent, untilChecks } = setup({ unhealthyThreshold: 1, healthyThreshold: 1 }, 2);
    const [a] = endpoints as [Endpoint];
    replies.set(a, 503);
    while (healthy(a)) await untilChecks(sent.length + 1);
    replies.set(a, 200);
    while (!healthy(a)) await untilChecks(sent.length + 1);
    const back = sent.filter((s) => s.endpoint === a).at(-1)!.at;
    expect(a.readySince).toBe(back);
  });

  it("close() aborts the checks in flight, leaves no timer and puts endpoints back", async () => {
    const { healthy, clock, checker, endpoints, replies, sent, untilEachChecked, wheel } = setup(
      { unhealthyThreshold: 1 },
      3,
    );
    replies.set(endpoints[0]!, 503);
    replies.set(endpoints[1]!, "hang");
    replies.set(endpoints[2]!, "hang");
    await untilEachChecked();
    const checks = sent.length;
    expect(healthy(endpoints[0]!)).toBe(false);
    const inFlight = checker.inFlight;
    expect(inFlight).toBeGreaterThanOrEqual(1);
    checker.close();
    expect(checker.inFlight).toBe(0);
    expect(sent.filter((s) => s.probe.cancel.reason === HEALTH_CHECK_CANCELLED)).toHaveLength(inFlight);
    expect(sent.every((s) => s.endpoint === endpoints[0] || s.probe.cancel.aborted)).toBe(true);
    expect(endpoints.every((e) => healthy(e))).toBe(true);
    expect(wheel.size).toBe(0);
    await clock.advanceAsync(100_000);
    expect(sent).toHaveLength(checks);
    expect(clock.pendingTimers).toBe(0);
  });

  it("arms nothing without endpoints", () => {
    const { checker, clock, wheel } = setup({}, 0);
    checker.setEndpoints([]);
    expect(wheel.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });
});

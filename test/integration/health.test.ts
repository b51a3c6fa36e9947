/**
 * Endpoint health against real replica processes: one of five frozen with SIGSTOP is found out
 * and ejected within a bounded number of attempts, and after SIGCONT it returns and ramps up.
 */
import { describe, expect, it } from "vitest";
import { createClient, roundRobin, staticDiscovery, type Client } from "weft";
import { startReplica, type Replica } from "../helpers/replicas.js";
import { defer, scoped, server } from "../helpers/scope.js";

/** Sends `count` GETs, `concurrency` at a time; returns how many failed. */
async function traffic(client: Client, count: number, concurrency = 8): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        try {
          const res = await client.request({ path: "/" });
          await res.text();
          if (res.status !== 200) failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return failed;
}

async function fiveReplicas(): Promise<Replica[]> {
  const replicas = await Promise.all(Array.from({ length: 5 }, () => startReplica()));
  defer(async () => {
    for (const r of replicas)
      if (r.process.exitCode === null && r.process.signalCode === null) r.process.kill("SIGCONT");
    await Promise.all(replicas.map((r) => r.stop()));
  });
  return replicas;
}

/** Counts the attempts that went to `url` and did not succeed, from now on. */
function failedAttemptsTo(client: Client, url: string): { count: number } {
  const counter = { count: 0 };
  client.events.onAttemptEnd((e) => {
    if (e.endpoint === url && e.outcome !== "success") counter.count++;
  });
  return counter;
}

describe("a replica frozen with SIGSTOP", () => {
  it("loses its traffic after a bounded number of failed attempts, and every call still succeeds", async () => {
    const replicas = await fiveReplicas();
    const frozen = replicas[2] as Replica;
    const client = scoped(
      createClient({
        service: "health",
        discovery: staticDiscovery(replicas.map((r) => r.url)),
        timeout: { attemptMs: 250, totalMs: 5000 },
      }),
    );
    expect(await traffic(client, 300)).toBe(0);
    const failed = failedAttemptsTo(client, frozen.url);
    frozen.process.kill("SIGSTOP");
    // The stalled attempts time out and are retried elsewhere; the balancer sees the stall in the
    // age of the requests waiting there and stops picking the replica.
    expect(await traffic(client, 1000)).toBe(0);
    expect(failed.count).toBeGreaterThan(0);
    expect(failed.count).toBeLessThanOrEqual(16);
  });

  it("is ejected after consecutive failures when the balancer is blind to it, then returns and ramps up after SIGCONT", async () => {
    const replicas = await fiveReplicas();
    const frozen = replicas[2] as Replica;
    const client = scoped(
      createClient({
        service: "health",
        discovery: staticDiscovery(replicas.map((r) => r.url)),
        balancer: roundRobin(), // blind to latency: only outlier detection can take it out
        timeout: { attemptMs: 250, totalMs: 5000 },
        breaker: false, // isolate outlier detection
        outlier: { baseEjectionMs: 1500 },
        slowStart: { windowMs: 3000 },
      }),
    );
    const ejected = new Promise<void>((resolve) =>
      client.events.onEndpointHealth((e) => e.endpoint === frozen.url && e.kind === "ejected" && resolve()),
    );
    const returned = new Promise<void>((resolve) =>
      client.events.onEndpointHealth((e) => e.endpoint === frozen.url && e.kind === "returned" && resolve()),
    );
    expect(await traffic(client, 200)).toBe(0);

    const failed = failedAttemptsTo(client, frozen.url);
    frozen.process.kill("SIGSTOP");
    expect(await traffic(client, 300)).toBe(0);
    await ejected;
    // 5 consecutive failures eject it; a few more were already in flight when it froze.
    expect(failed.count).toBeGreaterThanOrEqual(5);
    expect(failed.count).toBeLessThanOrEqual(5 + 8);
    expect(client.snapshot().endpoints.find((e) => e.url === frozen.url)?.state).toBe("ejected");

    frozen.process.kill("SIGCONT");
    let state = client.snapshot().endpoints.find((e) => e.url === frozen.url)?.state;
    while (state === "ejected") {
      await Promise.race([returned, traffic(client, 20)]);
      state = client.snapshot().endpoints.find((e) => e.url === frozen.url)?.state;
    }
    await returned;
    // Back with a slow-start ramp: below its full weight at first, and serving again.
    expect(client.snapshot().endpoints.find((e) => e.url === frozen.url)?.effectiveWeight).toBeLessThan(1);
    const served = { count: 0 };
    client.events.onAttemptEnd((e) => {
      if (e.endpoint === frozen.url && e.outcome === "success") served.count++;
    });
    expect(await traffic(client, 200)).toBe(0);
    expect(served.count).toBeGreaterThan(0);
  });
});

describe("active health checks", () => {
  it("take an endpoint whose health path fails out of rotation, and bring it back when it passes", async () => {
    let sick = false;
    const flappy = await server((req, res) => {
      res.statusCode = req.url === "/healthz" && sick ? 503 : 200;
      res.end();
    });
    const steady = await server();
    const client = scoped(
      createClient({
        service: "checked",
        discovery: staticDiscovery([flappy.url, steady.url]),
        healthCheck: { path: "/healthz", intervalMs: 50, timeoutMs: 50, unhealthyThreshold: 2, healthyThreshold: 1 },
      }),
    );
    const verdicts: string[] = [];
    const next = (kind: string) =>
      new Promise<void>((resolve) =>
        client.events.onEndpointHealth((e) => e.endpoint === flappy.url && e.kind === kind && resolve()),
      );
    client.events.onEndpointHealth((e) =>
      verdicts.push(`${e.endpoint === flappy.url ? "flappy" : "steady"} ${e.kind}`),
    );

    const unhealthy = next("unhealthy");
    sick = true;
    await unhealthy;
    expect(client.snapshot().endpoints.find((e) => e.url === flappy.url)?.activeHealthy).toBe(false);
    const before = flappy.received.filter((r) => r.url === "/").length;
    for (let i = 0; i < 20; i++) await (await client.request({ path: "/" })).text();
    expect(flappy.received.filter((r) => r.url === "/").length).toBe(before);

    const healthy = next("healthy");
    sick = false;
    await healthy;
    expect(verdicts).toEqual(["flappy unhealthy", "flappy healthy"]);
    expect(flappy.received.some((r) => r.url === "/healthz")).toBe(true);
  });
});

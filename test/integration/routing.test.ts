/**
 * Routes against real HTTP servers on loopback: matching (method, path template, headers, query;
 * first match wins), weighted and sticky splits over endpoint subsets, header-based canaries,
 * per-route policy overrides, fault injection, mirroring, and backends that are other clients of
 * the mesh. Randomness is seeded, so a share is measured the same way every run.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  createClient,
  createMesh,
  roundRobin,
  seededRandom,
  staticDiscovery,
  type Client,
  type EndpointInfo,
} from "weft";
import { scoped, server } from "../helpers/scope.js";
import { refusedPort, type TestServer } from "../helpers/server.js";

const versioned = (s: TestServer, version: string): EndpointInfo => ({ url: s.url, metadata: { version } });

/** Sends `n` calls, `concurrency` at a time; returns the responses' bodies (the answering server's name). */
async function callMany(
  n: number,
  concurrency: number,
  call: (i: number) => Promise<{ status: number; text(): Promise<string> }>,
): Promise<string[]> {
  const bodies: string[] = new Array<string>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const res = await call(i);
        bodies[i] = `${res.status} ${await res.text()}`;
      }
    }),
  );
  return bodies;
}

async function named(name: string, delayMs = 0): Promise<TestServer> {
  return server(async (_req, res) => {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    res.end(name);
  });
}

describe("routes", () => {
  it("matches method, path template, header and query in order (the first match wins); the rest goes to the default route", async () => {
    const [v1, v2, admin] = await Promise.all([named("v1"), named("v2"), named("admin")]);
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([versioned(v1, "v1"), versioned(v2, "v2"), versioned(admin, "admin")]),
        // Round robin, so the default route's calls visit every endpoint whatever their latencies.
        balancer: roundRobin(),
        routes: [
          { name: "canary", match: { headers: { "x-canary": "1" } }, backends: [{ subset: { version: "v2" } }] },
          { match: { method: ["PUT", "DELETE"], path: "/v1/items/:id" }, backends: [{ subset: { version: "admin" } }] },
          {
            match: { path: { prefix: "/v2" }, query: { beta: { present: true } } },
            backends: [{ subset: { version: "v2" } }],
          },
          { match: { path: "/v1/*" }, backends: [{ subset: { version: "v1" } }] },
        ],
      }),
    );
    const answer = async (init: Parameters<Client["request"]>[0]): Promise<string> =>
      (await client.request(init)).text();

    expect(await answer({ path: "/v1/items/7", headers: { "x-canary": "1" } })).toBe("v2");
    expect(await answer({ method: "DELETE", path: "/v1/items/7" })).toBe("admin");
    // The template takes one segment: /v1/items/7/parts is not it, so the prefix route takes it.
    expect(await answer({ method: "PUT", path: "/v1/items/7/parts" })).toBe("v1");
    expect(await answer({ path: "/v1/items/7?x=1" })).toBe("v1");
    expect(await answer({ path: "/v2/items?beta=" })).toBe("v2");
    // No route takes /v2 without ?beta: the default route, every endpoint.
    const rest = await callMany(30, 5, () => client.request({ path: "/v2/items" }));
    expect(new Set(rest)).toEqual(new Set(["200 v1", "200 v2", "200 admin"]));

    const routing = client.snapshot().routing!;
    expect(routing.version).toBe("code");
    expect(routing.routes.map((r) => [r.name, r.calls])).toEqual([
      ["canary", 1],
      ["PUT,DELETE /v1/items/:id", 1],
      ["/v2…", 1],
      ["/v1/*", 2],
      ["default", 30],
    ]);
  });

  it("splits 90/10 over 2,000 calls within ±3 % (measured at the servers)", async () => {
    const [stable, canary] = await Promise.all([named("v1"), named("v2")]);
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([versioned(stable, "v1"), versioned(canary, "v2")]),
        random: seededRandom(7),
        routes: [
          {
            backends: [
              { subset: { version: "v1" }, weight: 90 },
              { subset: { version: "v2" }, weight: 10 },
            ],
          },
        ],
      }),
    );
    await callMany(2000, 16, (i) => client.request({ path: `/items/${i}` }));
    const share = canary.received.length / 2000;
    expect(stable.received.length + canary.received.length).toBe(2000);
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(0.03);
    const backends = client.snapshot().routing!.routes[0]!.backends;
    expect(backends.map((b) => [b.backend, b.percent])).toEqual([
      ["version=v1", 90],
      ["version=v2", 10],
    ]);
    expect(backends[1]!.calls).toBe(canary.received.length);
  });

  it("keeps each sticky key on one version while the weights stay, and a larger canary share only moves keys onto it", async () => {
    const [stable, canary] = await Promise.all([named("v1"), named("v2")]);
    const discovery = staticDiscovery([versioned(stable, "v1"), versioned(canary, "v2")]);
    const split = (percent: number): Client =>
      scoped(
        createClient({
          service: "catalog",
          discovery,
          routes: [
            {
              sticky: { header: "x-user" },
              backends: [
                { subset: { version: "v1" }, weight: 100 - percent },
                { subset: { version: "v2" }, weight: percent },
              ],
            },
          ],
        }),
      );
    const at10 = split(10);
    const users = Array.from({ length: 300 }, (_, i) => `user-${i}`);
    const versionOf = new Map<string, Set<string>>();
    for (let round = 0; round < 5; round++) {
      const bodies = await callMany(users.length, 16, (i) =>
        at10.request({ path: "/cart", headers: { "x-user": users[i]! } }),
      );
      bodies.forEach((body, i) => {
        const seen = versionOf.get(users[i]!) ?? new Set<string>();
        seen.add(body);
        versionOf.set(users[i]!, seen);
      });
    }
    // Never a switch.
    expect([...versionOf.values()].filter((seen) => seen.size !== 1)).toEqual([]);
    const onCanary = users.filter((u) => versionOf.get(u)!.has("200 v2"));
    // About 10 % of 300 keys (a hash, not a coin: wide bounds, the same every run).
    expect(onCanary.length).toBeGreaterThan(10);
    expect(onCanary.length).toBeLessThan(60);
    // 10 → 50 %: every key that was on the canary still is.
    const at50 = split(50);
    const after = await callMany(onCanary.length, 8, (i) =>
      at50.request({ path: "/cart", headers: { "x-user": onCanary[i]! } }),
    );
    expect(new Set(after)).toEqual(new Set(["200 v2"]));
  });

  it("applies a route's timeout and retry overrides to its own calls only", async () => {
    let flaky = 0;
    const backend = await server(async (req, res) => {
      if (req.url!.startsWith("/slow") || req.url!.startsWith("/also-slow")) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        res.end("late");
      } else if (req.url!.startsWith("/flaky") || req.url!.startsWith("/also-flaky")) {
        // Fails twice per path, then answers.
        res.statusCode = flaky++ % 3 < 2 ? 503 : 200;
        res.end(String(res.statusCode));
      } else res.end("ok");
    });
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([backend.url]),
        timeout: { totalMs: 2000 },
        retry: { maxAttempts: 3, backoff: { baseMs: 1, maxMs: 2 } },
        routes: [
          { match: { path: "/slow" }, timeout: { totalMs: 100 } },
          { match: { path: "/flaky" }, retry: { maxAttempts: 1 } },
        ],
      }),
    );
    await expect(client.request({ path: "/slow" })).rejects.toMatchObject({
      code: "WEFT_ERR_TOTAL_TIMEOUT",
      timeoutMs: 100,
    });
    // The same server delay on another path: the client's 2 s.
    expect(await (await client.request({ path: "/also-slow" })).text()).toBe("late");
    // A call's own timeout still wins over its route's.
    expect(await (await client.request({ path: "/slow", timeout: { totalMs: 1000 } })).text()).toBe("late");

    const before = backend.received.length;
    expect((await client.request({ path: "/flaky" })).status).toBe(503);
    expect(backend.received.length - before).toBe(1);
    flaky = 0;
    expect((await client.request({ path: "/also-flaky" })).status).toBe(200);
    expect(backend.received.length - before).toBe(4);
  });

  it("resends a POST its route calls idempotent, and lets a route's classifier decide for its calls", async () => {
    let n = 0;
    const backend = await server((req, res) => {
      res.statusCode = n++ % 2 === 0 ? 503 : 200;
      if (req.url === "/conflict") res.statusCode = n % 2 === 1 ? 409 : 200;
      res.end();
    });
    const client = scoped(
      createClient({
        service: "orders",
        discovery: staticDiscovery([backend.url]),
        retry: { backoff: { baseMs: 1, maxMs: 2 } },
        routes: [
          { match: { path: "/search" }, idempotent: true },
          {
            match: { path: "/conflict" },
            classifier: (_req, res) => (res?.status === 409 ? "retryable" : res !== undefined ? "success" : "failure"),
          },
        ],
      }),
    );
    n = 0;
    expect((await client.request({ method: "POST", path: "/search", body: "q" })).status).toBe(200);
    expect(backend.received.filter((r) => r.url === "/search")).toHaveLength(2);
    // Without the route, a POST that reached the server is not sent twice.
    n = 0;
    expect((await client.request({ method: "POST", path: "/pay", body: "1" })).status).toBe(503);
    expect(backend.received.filter((r) => r.url === "/pay")).toHaveLength(1);
    // The caller's own word wins over the route's.
    n = 0;
    expect((await client.request({ method: "POST", path: "/search", body: "q", idempotent: false })).status).toBe(503);
    // 409 is not retryable to the default classifier; this route's says it is.
    n = 0;
    expect((await client.request({ path: "/conflict" })).status).toBe(200);
    expect(backend.received.filter((r) => r.url === "/conflict")).toHaveLength(2);
  });

  it("injects aborts into 10 % and delays into 20 % of 2,000 calls, each within ±3 %", async () => {
    const backend = await named("ok");
    const client = scoped(
      createClient({
        service: "drill",
        discovery: staticDiscovery([backend.url]),
        random: seededRandom(11),
        retry: false,
        routes: [{ fault: { abort: { percent: 10, status: 503 }, delay: { percent: 20, ms: 300 } } }],
      }),
    );
    const slow: boolean[] = [];
    const bodies = await callMany(2000, 100, async (i) => {
      const started = performance.now();
      const res = await client.request({ path: `/x/${i}` });
      // A delayed call takes at least the delay; the others take a few ms (a call of 300 ms
      // without a delay would count too, so a busy machine can only push the share up).
      slow[i] = performance.now() - started >= 299;
      return res;
    });
    const aborted = bodies.filter((b) => b === "503 fault injected").length / 2000;
    const delayed = slow.filter(Boolean).length / 2000;
    expect(Math.abs(aborted - 0.1)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(delayed - 0.2)).toBeLessThanOrEqual(0.03);
    // What reached the server is what was not aborted.
    expect(backend.received.length).toBe(bodies.filter((b) => b === "200 ok").length);
    const faults = client.snapshot().routing!.routes[0]!.faults!;
    expect(faults.aborted / 2000).toBeCloseTo(aborted, 5);
    // Every delayed call took at least the delay.
    expect(faults.delayed).toBeLessThanOrEqual(slow.filter(Boolean).length);
    expect(faults.delayed).toBeGreaterThan(0);
    // An injected abort with error: the call fails with WEFT_ERR_FAULT_INJECTED, counted as a failure.
    const erroring = scoped(
      createClient({
        service: "drill-2",
        discovery: staticDiscovery([backend.url]),
        routes: [{ name: "all", fault: { abort: { percent: 100, error: true } } }],
      }),
    );
    await expect(erroring.request({ path: "/" })).rejects.toMatchObject({
      code: "WEFT_ERR_FAULT_INJECTED",
      route: "all",
    });
    expect(erroring.snapshot().counters.failures).toBe(1);
  });

  it("mirrors a share of calls to a subset, marked and counted, without changing what the caller gets", async () => {
    const primary = await named("primary");
    const shadow = await named("shadow");
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([versioned(primary, "v1"), versioned(shadow, "v2")]),
        random: seededRandom(3),
        routes: [{ backends: [{ subset: { version: "v1" } }], mirror: { subset: { version: "v2" }, percent: 50 } }],
      }),
    );
    const bodies = await callMany(400, 8, (i) => client.request({ method: "POST", path: `/p/${i}`, body: "b" }));
    expect(new Set(bodies)).toEqual(new Set(["200 primary"]));
    // Copies are fire-and-forget: wait for them to land before counting.
    const mirror = (): NonNullable<ReturnType<Client["snapshot"]>["routing"]>["routes"][number]["mirror"] =>
      client.snapshot().routing!.routes[0]!.mirror;
    await expect.poll(() => mirror()!.inflight).toBe(0);
    const m = mirror()!;
    expect(m.sent).toBe(shadow.received.length);
    expect(Math.abs(m.sent / 400 - 0.5)).toBeLessThanOrEqual(0.06);
    expect(m.ok).toBe(m.sent);
    expect(shadow.received.every((r) => r.headers["x-weft-mirror"] === "1" && r.body === "b")).toBe(true);
    expect(primary.received.every((r) => r.headers["x-weft-mirror"] === undefined)).toBe(true);
  });

  it("does not mirror a call whose body is a stream (it cannot be read twice): skipped, counted", async () => {
    const primary = await named("primary");
    const shadow = await named("shadow");
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([versioned(primary, "v1"), versioned(shadow, "v2")]),
        routes: [{ backends: [{ subset: { version: "v1" } }], mirror: { subset: { version: "v2" }, percent: 100 } }],
      }),
    );
    const stream = Readable.from([Buffer.from("once")]);
    const res = await client.request({ method: "POST", path: "/upload", body: stream as never });
    expect(await res.text()).toBe("primary");
    expect(primary.received[0]!.body).toBe("once");
    expect(client.snapshot().routing!.routes[0]!.mirror).toMatchObject({ sent: 0, skipped: 1 });
    expect(shadow.received).toHaveLength(0);
  });

  it("keeps the primary's success and latency when the mirror is down or slow: copies fail or are dropped, counted", async () => {
    const primary = await named("primary");
    const slowShadow = await named("slow", 2000);
    const down = `http://127.0.0.1:${await refusedPort()}`;
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([
          versioned(primary, "v1"),
          { url: down, metadata: { version: "down" } },
          versioned(slowShadow, "slow"),
        ]),
        routes: [
          {
            match: { path: "/a/*" },
            backends: [{ subset: { version: "v1" } }],
            mirror: { subset: { version: "down" }, percent: 100 },
          },
          {
            match: { path: "/b/*" },
            backends: [{ subset: { version: "v1" } }],
            mirror: { subset: { version: "slow" }, percent: 100, maxInFlight: 4 },
          },
        ],
      }),
    );
    let slowest = 0;
    const timed = async (path: string): Promise<{ status: number; text(): Promise<string> }> => {
      const started = performance.now();
      const res = await client.request({ path });
      slowest = Math.max(slowest, performance.now() - started);
      return res;
    };
    const a = await callMany(200, 8, (i) => timed(`/a/${i}`));
    const b = await callMany(200, 8, (i) => timed(`/b/${i}`));
    expect(new Set([...a, ...b])).toEqual(new Set(["200 primary"]));
    // A call that waited for its copy would take the mirror's 2 s: none came near it.
    expect(slowest).toBeLessThan(1500);
    const routes = client.snapshot().routing!.routes;
    await expect.poll(() => client.snapshot().routing!.routes[0]!.mirror!.inflight, { timeout: 10_000 }).toBe(0);
    // Sent and refused until outlier detection ejected the dead endpoint; from then on not made at all.
    const toDown = client.snapshot().routing!.routes[0]!.mirror!;
    expect(toDown).toMatchObject({ ok: 0, failed: toDown.sent });
    expect(toDown.sent + toDown.unavailable).toBe(200);
    expect(toDown.unavailable).toBeGreaterThan(150);
    const slow = routes[1]!.mirror!;
    // At most 4 copies out at once against a 2 s mirror: the rest dropped, never queued.
    expect(slow.dropped).toBeGreaterThan(150);
    expect(slow.sent + slow.dropped).toBe(200);
    expect(primary.received).toHaveLength(400);
  });

  it("sends a route's share to another client of the mesh, with that client's policies, and names a missing one", async () => {
    const [v1, v2] = await Promise.all([named("v1"), named("v2")]);
    const mesh = scoped(createMesh());
    const canary = mesh.client("catalog-v2", { discovery: staticDiscovery([v2.url]) });
    const catalog = mesh.client("catalog", {
      discovery: staticDiscovery([v1.url]),
      routes: [
        { match: { headers: { "x-canary": "1" } }, backends: [{ service: "catalog-v2" }] },
        { match: { path: "/gone" }, backends: [{ service: "catalog-v3" }] },
      ],
    });
    expect(await (await catalog.request({ path: "/", headers: { "x-canary": "1" } })).text()).toBe("v2");
    expect(await (await catalog.request({ path: "/" })).text()).toBe("v1");
    // Counted by both: the caller's client and the one that sent it.
    expect(canary.snapshot().counters.calls).toBe(1);
    expect(catalog.snapshot().counters.calls).toBe(2);
    expect(catalog.snapshot().routing!.routes[0]!.backends[0]).toMatchObject({
      backend: "service:catalog-v2",
      calls: 1,
    });
    await expect(catalog.request({ path: "/gone" })).rejects.toMatchObject({
      code: "WEFT_ERR_NO_ROUTE_BACKEND",
      message: expect.stringMatching(/catalog-v3/),
    });
  });

  it("fails a call whose route's subset has no endpoint, naming the subset", async () => {
    const v1 = await named("v1");
    const client = scoped(
      createClient({
        service: "catalog",
        discovery: staticDiscovery([versioned(v1, "v1")]),
        routes: [{ backends: [{ subset: { version: "v3" } }] }],
      }),
    );
    await expect(client.request({ path: "/" })).rejects.toMatchObject({
      code: "WEFT_ERR_NO_ENDPOINTS",
      message: expect.stringMatching(/subset version=v3 \(0 endpoint/),
    });
  });
});

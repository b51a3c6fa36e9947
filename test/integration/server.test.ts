/**
 * weft/server on a real node:http server on 127.0.0.1, called with real clients (undici, a weft
 * client): health, deadlines, identity and access rules, shedding, handler failures, events,
 * the mesh snapshot.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { request as undiciRequest } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, createMesh, currentContext, staticDiscovery, SHED_HEADER, type Client } from "weft";
import { inbound, inboundContext, type Inbound, type InboundOptions, type RequestHandler } from "weft/server";
import { invalidOption } from "../helpers/options.js";

interface Served {
  readonly url: string;
  readonly server: http.Server;
  readonly inbound: Inbound;
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function serve(options: Partial<InboundOptions>, handler: RequestHandler): Promise<Served> {
  const warnings: string[] = [];
  const ib = inbound({ service: "orders", onWarning: (m) => warnings.push(m), ...options });
  const server = http.createServer(ib.handler(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  open.push(async () => {
    await ib.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    inbound: Object.assign(ib, { warnings }),
  };
}

async function get(url: string, headers: Record<string, string> = {}, method = "GET") {
  const res = await undiciRequest(url, { method: method as "GET", headers });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  };
}

function client(url: string, extra: Record<string, unknown> = {}): Client {
  const c = createClient({ service: "orders", discovery: staticDiscovery([url]), ...extra });
  open.push(() => c.close());
  return c;
}

describe("inbound() options", () => {
  it("fails at construction naming the option", () => {
    expect(invalidOption(() => inbound({} as InboundOptions))).toBe("service");
    expect(invalidOption(() => inbound({ service: "s", shed: { limit: 0 } }))).toBe("shed.limit");
    expect(invalidOption(() => inbound({ service: "s", shed: {} }))).toBe("shed.limit");
    expect(invalidOption(() => inbound({ service: "s", shed: { limit: 5, windowMs: 100 } }))).toBe("shed.windowMs");
    expect(invalidOption(() => inbound({ service: "s", shed: { adaptive: true, limit: 5 } }))).toBe("shed.limit");
    expect(invalidOption(() => inbound({ service: "s", shed: { adaptive: true, minLimit: 10, maxLimit: 5 } }))).toBe(
      "shed.maxLimit",
    );
    expect(invalidOption(() => inbound({ service: "s", deadline: { allowanceMs: -1 } }))).toBe("deadline.allowanceMs");
    expect(invalidOption(() => inbound({ service: "s", deadline: { header: "bad header" } }))).toBe("deadline.header");
    expect(invalidOption(() => inbound({ service: "s", identity: { header: "x-id", trustedProxies: [] } }))).toBe(
      "identity.trustedProxies",
    );
    expect(invalidOption(() => inbound({ service: "s", health: { livePath: "/h", readyPath: "/h" } }))).toBe(
      "health.readyPath",
    );
    expect(invalidOption(() => inbound({ service: "s", drain: { signals: ["SIGKILL"] } }))).toBe("drain.signals[0]");
    expect(invalidOption(() => inbound({ service: "s", drain: { deregister: [{}] as never } }))).toBe(
      "drain.deregister[0]",
    );
    expect(invalidOption(() => inbound({ service: "s", shedd: { limit: 1 } } as unknown as InboundOptions))).toBe(
      "shedd",
    );
  });
});

describe("health", () => {
  it("answers /healthz and /readyz before anything else, and /readyz fails while draining", async () => {
    const s = await serve(
      { shed: { limit: 1 }, authz: { rules: [{ paths: ["/x"], from: ["*"] }] }, drain: { delayMs: 0, graceMs: 1000 } },
      (_req, res) => res.end("app"),
    );
    expect((await get(s.url + "/healthz")).json()).toEqual({ status: "ok", service: "orders" });
    expect((await get(s.url + "/readyz")).status).toBe(200);
    expect((await get(s.url + "/readyz", {}, "HEAD")).text).toBe("");
    // Health checks are not requests of the application: not counted, not denied by authz.
    expect(s.inbound.snapshot().counters.requests).toBe(0);
    const draining = new Promise<void>((resolve) =>
      s.inbound.events.onDrain((e) => e.phase === "draining" && resolve()),
    );
    const drained = s.inbound.drain();
    await draining;
    expect(s.inbound.snapshot().state).toBe("draining");
    await drained;
    expect(s.inbound.snapshot().state).toBe("closed");
  });

  it("asks the application's ready() and says not ready when it says no or throws", async () => {
    let ready: boolean | Error = false;
    const s = await serve(
      { health: { ready: () => (ready instanceof Error ? Promise.reject(ready) : ready) } },
      (_req, res) => res.end(),
    );
    expect((await get(s.url + "/readyz")).json()).toMatchObject({ status: "not ready" });
    ready = new Error("cache cold");
    expect((await get(s.url + "/readyz")).json()).toMatchObject({ status: "not ready", message: "cache cold" });
    ready = true;
    expect((await get(s.url + "/readyz")).status).toBe(200);
  });

  it("leaves those paths to the application with health: false", async () => {
    const s = await serve({ health: false }, (_req, res) => res.end("mine"));
    expect((await get(s.url + "/healthz")).text).toBe("mine");
  });
});

describe("deadlines", () => {
  it("runs the handler in a context whose deadline is the caller's time less the allowance", async () => {
    const s = await serve({ deadline: { allowanceMs: 5 } }, (_req, res) => {
      const ctx = inboundContext()!;
      res.end(JSON.stringify({ remaining: ctx.remainingMs(), same: currentContext() === ctx }));
    });
    const body = (await get(s.url + "/a", { "x-weft-timeout-ms": "300" })).json();
    expect(body.same).toBe(true);
    expect(body.remaining).toBeLessThanOrEqual(295);
    expect(body.remaining).toBeGreaterThan(200);
  });

  it("reads grpc-timeout, caps a deadline at maxMs and gives defaultMs to a request without one", async () => {
    const s = await serve({ deadline: { maxMs: 1000, defaultMs: 400, allowanceMs: 0 } }, (_req, res) =>
      res.end(String(inboundContext()!.remainingMs())),
    );
    expect(Number((await get(s.url, { "grpc-timeout": "250m" })).text)).toBeLessThanOrEqual(250);
    expect(Number((await get(s.url, { "x-weft-timeout-ms": "3600000" })).text)).toBeLessThanOrEqual(1000);
    const fallback = Number((await get(s.url)).text);
    expect(fallback).toBeLessThanOrEqual(400);
    expect(fallback).toBeGreaterThan(300);
  });

  it("refuses an expired deadline at once with 504, and an unreadable one with 400, before the handler", async () => {
    let handled = 0;
    const s = await serve({}, (_req, res) => {
      handled++;
      res.end();
    });
    const expired = await get(s.url, { "x-weft-timeout-ms": "0" });
    expect(expired.status).toBe(504);
    expect(expired.json()).toMatchObject({ error: "deadline_expired" });
    const bad = await get(s.url, { "x-weft-timeout-ms": "soon" });
    expect(bad.status).toBe(400);
    expect(String(bad.json().message)).toMatch(/x-weft-timeout-ms must be a whole number of milliseconds, got "soon"/);
    expect(handled).toBe(0);
    expect(s.inbound.snapshot().counters).toMatchObject({ expired: 1, badDeadline: 1 });
  });

  it("hands the rest of the deadline to the weft calls the handler makes, with no code in the handler", async () => {
    const downstream = await serve({}, (req, res) => res.end(String(req.headers["x-weft-timeout-ms"])));
    const next = client(downstream.url);
    const s = await serve({ deadline: { allowanceMs: 0 } }, async (_req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      res.end(await (await next.request({ path: "/" })).text());
    });
    const forwarded = Number((await get(s.url, { "x-weft-timeout-ms": "500" })).text);
    expect(forwarded).toBeLessThanOrEqual(500 - 30);
    expect(forwarded).toBeGreaterThan(0);
  });

  it("answers 504, not 500, when the handler's call ran out of the inherited deadline", async () => {
    const downstream = await serve({}, () => {});
    const next = client(downstream.url);
    const s = await serve({ deadline: { allowanceMs: 0 } }, async (_req, res) => {
      res.end(await (await next.request({ path: "/hang" })).text());
    });
    const res = await get(s.url, { "x-weft-timeout-ms": "80" });
    expect(res.status).toBe(504);
    expect(res.json()).toMatchObject({ error: "deadline_exceeded" });
    expect((s.inbound as unknown as { warnings: string[] }).warnings).toEqual([]);
    downstream.server.closeAllConnections();
  });

  it("ignores callers' deadlines with deadline: false", async () => {
    const s = await serve({ deadline: false }, (_req, res) => res.end(String(inboundContext()!.remainingMs())));
    expect((await get(s.url, { "x-weft-timeout-ms": "0" })).text).toBe("Infinity");
  });
});

describe("cancellation", () => {
  it("cancels the handler's weft calls when its caller goes away", async () => {
    let downstreamAborted = 0;
    const downstream = await serve({}, (_req, res) => {
      res.on("close", () => {
        if (!res.writableFinished) downstreamAborted++;
      });
    });
    const next = client(downstream.url);
    let callStarted!: () => void;
    const started = new Promise<void>((resolve) => (callStarted = resolve));
    let outcome!: (e: unknown) => void;
    const failed = new Promise<unknown>((resolve) => (outcome = resolve));
    const s = await serve({}, async (_req, res) => {
      const call = next.request({ path: "/hang" });
      callStarted();
      try {
        await call;
        res.end("unexpected");
      } catch (error) {
        outcome(error);
      }
    });
    const controller = new AbortController();
    const pending = undiciRequest(s.url, { signal: controller.signal }).catch((e: unknown) => e);
    await started;
    controller.abort();
    await pending;
    expect(((await failed) as { code?: string }).code).toBe("WEFT_ERR_REQUEST_ABORTED");
    await expect.poll(() => downstreamAborted).toBe(1);
    expect(s.inbound.snapshot().counters.aborted).toBe(1);
    // Its failure is no news: no warning about the handler.
    expect((s.inbound as unknown as { warnings: string[] }).warnings).toEqual([]);
  });
});

describe("identity and access rules", () => {
  const rules: InboundOptions["authz"] = {
    rules: [
      { paths: ["/public"] },
      { paths: ["/orders/:id"], methods: ["GET"], from: ["spiffe://example.org/ns/shop/*"] },
    ],
  };
  const identity = { header: "x-weft-peer-identity", trustedProxies: ["127.0.0.1"] };

  it("allows, denies, and refuses no identity and a malformed one, each with its status and reason", async () => {
    const seen: (string | null)[] = [];
    const s = await serve({ authz: rules, identity }, (_req, res) => {
      seen.push(inboundContext()!.identity?.id ?? null);
      res.end("ok");
    });
    const allowed = await get(s.url + "/orders/7", { "x-weft-peer-identity": "spiffe://example.org/ns/shop/sa/web" });
    expect(allowed.status).toBe(200);
    expect(seen).toEqual(["spiffe://example.org/ns/shop/sa/web"]);
    const denied = await get(s.url + "/orders/7", { "x-weft-peer-identity": "spiffe://example.org/ns/ads/sa/tracker" });
    expect(denied.status).toBe(403);
    expect(denied.json()).toEqual({
      error: "forbidden",
      message: "spiffe://example.org/ns/ads/sa/tracker is not allowed to GET /orders/7",
    });
    const none = await get(s.url + "/orders/7");
    expect(none.status).toBe(401);
    expect(none.json().error).toBe("unauthenticated");
    const malformed = await get(s.url + "/orders/7", { "x-weft-peer-identity": "spiffe://Example.org/x" });
    expect(malformed.status).toBe(401);
    expect(String(malformed.json().message)).toMatch(/malformed peer identity/);
    expect((await get(s.url + "/public")).status).toBe(200);
    expect((await get(s.url + "/orders")).status).toBe(403);
    expect(s.inbound.snapshot().authz).toEqual({ allow: 2, deny: 2, unauthenticated: 1, malformed: 1 });
    // Refusals are logged, at most one a second, naming the decision but never the raw header.
    const warnings = (s.inbound as unknown as { warnings: string[] }).warnings;
    expect(warnings[0]).toMatch(
      /^weft\/server orders: deny GET \/orders\/7: spiffe:\/\/example.org\/ns\/ads\/sa\/tracker is not allowed/,
    );
    expect(warnings.join("\n")).not.toContain("spiffe://Example.org");
  });

  it("does not believe the header from an address that is not a trusted proxy", async () => {
    const s = await serve(
      { authz: rules, identity: { header: "x-weft-peer-identity", trustedProxies: ["10.9.9.9"] } },
      (req, res) => res.end(String(req.headers["x-weft-peer-identity"])),
    );
    const forged = await get(s.url + "/orders/7", { "x-weft-peer-identity": "spiffe://example.org/ns/shop/sa/web" });
    expect(forged.status).toBe(401);
    const pub = await get(s.url + "/public", { "x-weft-peer-identity": "spiffe://example.org/ns/shop/sa/web" });
    // Dropped before the application could read it.
    expect(pub.text).toBe("undefined");
  });

  it("reports every decision as an event, with the SPIFFE ID and never the raw value", async () => {
    const s = await serve({ authz: rules, identity }, (_req, res) => res.end());
    const events: { decision: string; identity: string | null }[] = [];
    s.inbound.events.onAuthz((e) => events.push({ decision: e.decision, identity: e.identity }));
    await get(s.url + "/orders/1", { "x-weft-peer-identity": "spiffe://example.org/ns/shop/sa/web" });
    await get(s.url + "/orders/1");
    expect(events).toEqual([
      { decision: "allow", identity: "spiffe://example.org/ns/shop/sa/web" },
      { decision: "unauthenticated", identity: null },
    ]);
  });
});

describe("load shedding", () => {
  it("sheds over the limit with 503, Retry-After and the shed marker, before the handler runs", async () => {
    const release: (() => void)[] = [];
    let handled = 0;
    const s = await serve({ shed: { limit: 2, retryAfterSeconds: 2 } }, (req, res) => {
      handled++;
      if (req.url === "/d") res.end("after");
      else release.push(() => res.end("done"));
    });
    const first = [get(s.url + "/a"), get(s.url + "/b")];
    await expect.poll(() => handled).toBe(2);
    const shed = await get(s.url + "/c");
    expect(shed.status).toBe(503);
    expect(shed.headers["retry-after"]).toBe("2");
    expect(shed.headers[SHED_HEADER]).toBe("concurrency");
    expect(shed.json().error).toBe("shed");
    expect(handled).toBe(2);
    for (const r of release) r();
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    expect(s.inbound.snapshot().admission).toMatchObject({ limit: 2, inflight: 0, shed: { normal: 1 } });
    expect((await get(s.url + "/d")).text).toBe("after");
  });

  it("never sheds what the priority function calls critical, and sheds low before normal", async () => {
    const release: (() => void)[] = [];
    const s = await serve(
      {
        shed: { limit: 5 },
        priority: (req) => (req.headers["x-priority"] as "low" | "critical" | undefined) ?? "normal",
      },
      (_req, res) => {
        release.push(() => res.end());
      },
    );
    const held = [1, 2, 3, 4].map(() => get(s.url));
    await expect.poll(() => release.length).toBe(4);
    // 4 of 5 in flight: low may fill 80 % (4), normal 100 % (5).
    expect((await get(s.url, { "x-priority": "low" })).status).toBe(503);
    const normal = get(s.url);
    await expect.poll(() => release.length).toBe(5);
    expect((await get(s.url)).status).toBe(503);
    const critical = get(s.url, { "x-priority": "critical" });
    await expect.poll(() => release.length).toBe(6);
    for (const r of release) r();
    await Promise.all([...held, normal, critical]);
    expect(s.inbound.snapshot().admission?.shed).toEqual({ critical: 0, high: 0, normal: 1, low: 1 });
  });

  it("is read by a weft client as overloaded: resent to the other replica, a POST too, no breaker tripped", async () => {
    const busy = await serve({ shed: { limit: 1 } }, () => {});
    const holding = get(busy.url + "/hold").catch(() => undefined);
    await expect.poll(() => busy.inbound.snapshot().inflight).toBe(1);
    const idle = await serve({}, (_req, res) => res.end("idle"));
    const c = client(busy.url, { discovery: staticDiscovery([busy.url, idle.url]) });
    for (let i = 0; i < 20; i++) {
      const res = await c.request({ method: "POST", path: "/orders", body: "{}" });
      expect(await res.text()).toBe("idle");
    }
    const shedding = c.snapshot().endpoints.find((e) => e.url === busy.url)!;
    expect(shedding.breaker).toBe("closed");
    expect(shedding.state).toBe("healthy");
    expect(shedding.failures).toBe(0);
    expect(c.snapshot().counters.failures).toBe(0);
    busy.server.closeAllConnections();
    await holding;
  });
});

describe("handler failures", () => {
  it("turns a throw or a rejection into a 500 and a warning, and the server keeps serving", async () => {
    const s = await serve({}, (req) => {
      if (req.url === "/throw") throw new Error("boom");
      return Promise.reject(new Error("async boom"));
    });
    expect((await get(s.url + "/throw")).status).toBe(500);
    expect((await get(s.url + "/reject")).json()).toEqual({ error: "internal", message: "the request handler failed" });
    const warnings = (s.inbound as unknown as { warnings: string[] }).warnings;
    expect(warnings[0]).toMatch(/the handler of GET \/throw failed: Error: boom/);
    expect(warnings[1]).toMatch(/async boom/);
    expect(s.inbound.snapshot().counters.errors).toBe(2);
  });
});

describe("snapshots and events", () => {
  it("joins the mesh's snapshot, reports every request's end, and leaves the mesh on close", async () => {
    const mesh = createMesh();
    const s = await serve({ mesh, route: () => "/orders/:id" }, (req, res) => {
      res.statusCode = req.url === "/orders/2" ? 500 : 200;
      res.end();
    });
    const ends: { route: string; status: number }[] = [];
    s.inbound.events.onRequestEnd((e) => ends.push({ route: e.route, status: e.status }));
    await get(s.url + "/orders/1");
    await get(s.url + "/orders/2");
    expect(ends).toEqual([
      { route: "/orders/:id", status: 200 },
      { route: "/orders/:id", status: 500 },
    ]);
    const snapshot = mesh.snapshot().servers[0]!;
    expect(snapshot).toMatchObject({
      service: "orders",
      state: "serving",
      inflight: 0,
      counters: { requests: 2, errors: 1 },
    });
    expect(snapshot.stats.window.successPercent).toBe(50);
    // One server per service in a mesh: two would collide in the snapshot, the page and the metrics.
    expect(invalidOption(() => inbound({ service: "orders", mesh }))).toBe("mesh");
    await s.inbound.close();
    expect(mesh.snapshot().servers).toEqual([]);
    const again = inbound({ service: "orders", mesh });
    expect(mesh.snapshot().servers).toHaveLength(1);
    await again.close();
    await mesh.close();
  });
});

/**
 * weft/admin over real HTTP: serveAdmin on port 0 in front of a real mesh whose clients call real
 * upstream servers on 127.0.0.1.
 */
import http from "node:http";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { createMesh, isWeftError, staticDiscovery, type Mesh, type MeshSnapshot } from "weft";
import { serveAdmin, type AdminServer } from "weft/admin";
import { inbound } from "weft/server";
import { fakeClock, type FakeClock } from "weft/testing";
import { mergeHistories } from "../../src/admin/history-delta.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";
import {
  historyLengths,
  openEvents,
  parsePrometheus,
  serverHistoryLengths,
  snapshotOf,
  valueOf,
  type EventStream,
} from "../helpers/admin.js";

async function meshWithTraffic(service = "catalog", calls = 7): Promise<{ mesh: Mesh; urls: string[] }> {
  const a = await server((_req, res) => res.end("a"));
  const b = await server((_req, res) => res.end("b"));
  const mesh = scoped(createMesh());
  const client = mesh.client(service, { discovery: staticDiscovery([a.url, b.url]) });
  for (let i = 0; i < calls; i++) await (await client.request({ path: `/v1/items/${i}` })).text();
  return { mesh, urls: [a.url, b.url] };
}

/**
 * A mesh whose clients (one per service, on one fake clock, over a real upstream) have `seconds`
 * seconds of history each, a call every 10 s; `call` makes one more. With `upstreamService`, the
 * upstream is a `weft/server` inbound of that name in the same mesh, on the same clock: it serves
 * every call, so the mesh's snapshot has a server with history too.
 */
async function meshWithHistory(
  services: readonly string[],
  seconds: number,
  upstreamService?: string,
): Promise<{ mesh: Mesh; clock: FakeClock; call(service: string): Promise<void> }> {
  const clock = fakeClock();
  const mesh = scoped(createMesh());
  const serving =
    upstreamService === undefined ? undefined : scoped(inbound({ service: upstreamService, mesh, clock }));
  const upstream = await server(
    serving === undefined ? (_req, res) => res.end("ok") : serving.handler((_req, res) => res.end("ok")),
  );
  const clients = new Map(
    services.map((service) => [service, mesh.client(service, { discovery: staticDiscovery([upstream.url]), clock })]),
  );
  const call = async (service: string): Promise<void> =>
    void (await (await clients.get(service)!.request({ path: "/v1/items" })).text());
  for (let s = 0; s < seconds; s++) {
    if (s % 10 === 0) for (const service of services) await call(service);
    clock.advance(1000);
  }
  return { mesh, clock, call };
}

type HistoryPoint = MeshSnapshot["clients"][number]["stats"]["history"][number];

/** The histories a page holds after `events`, merged as the page merges them: the clients', or the servers'. */
function pageHistories(
  events: EventStream["events"],
  of: "clients" | "servers" = "clients",
): Map<string, HistoryPoint[]> {
  let histories = new Map<string, HistoryPoint[]>();
  for (const event of events) {
    if (event.name === "snapshot" || event.name === "update")
      histories = mergeHistories(histories, snapshotOf(event)[of], event.name === "snapshot");
  }
  return histories;
}

async function admin(mesh: Mesh, options: Parameters<typeof serveAdmin>[1] = {}): Promise<AdminServer> {
  return scoped(await serveAdmin(mesh, { port: 0, ...options }));
}

// ── the tests ──────────────────────────────────────────────────────────────────────────────────

describe("serveAdmin", () => {
  it("binds 127.0.0.1 on a free port by default and serves the dashboard page at url", async () => {
    const { mesh } = await meshWithTraffic();
    const server = scoped(await serveAdmin(mesh));
    const url = new URL(server.url);
    expect(url.hostname).toBe("127.0.0.1");
    expect(Number(url.port)).toBeGreaterThan(0);
    expect(url.pathname).toBe("/admin");
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'nonce-/);
    const html = await res.text();
    expect(html).toContain("<title>weft mesh</title>");
    // No data in the markup: it all arrives through the event stream.
    expect(html).not.toContain("catalog");
  });

  it("GET /admin/snapshot.json is the mesh's snapshot", async () => {
    const { mesh, urls } = await meshWithTraffic("catalog", 7);
    const server = await admin(mesh);
    const res = await fetch(`${server.url}/snapshot.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = (await res.json()) as MeshSnapshot;
    const direct = mesh.snapshot();
    expect(body.clients.map((c) => c.service)).toEqual(["catalog"]);
    const [client] = body.clients;
    expect(client!.counters).toEqual(direct.clients[0]!.counters);
    expect(client!.counters.calls).toBe(7);
    expect(client!.endpoints.map((e) => e.url).sort()).toEqual([...urls].sort());
    expect(client!.endpoints.reduce((sum, e) => sum + e.requests, 0)).toBe(7);
    expect(client!.stats.history.length).toBeGreaterThan(0);
    expect(Math.abs(body.takenAt - direct.takenAt)).toBeLessThan(5_000);
  });

  it("GET /admin/metrics is Prometheus text with HELP and TYPE for every metric, carrying the counts", async () => {
    const { mesh, urls } = await meshWithTraffic("catalog", 7);
    const server = await admin(mesh);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const { samples, help, type } = parsePrometheus(await res.text());
    for (const name of new Set(samples.map((s) => s.name))) {
      expect(help.has(name), `HELP for ${name}`).toBe(true);
      expect(type.has(name), `TYPE for ${name}`).toBe(true);
    }
    expect(type.get("weft_client_requests_total")).toBe("counter");
    expect(type.get("weft_client_inflight")).toBe("gauge");
    const catalog = { service: "catalog" };
    expect(valueOf(samples, "weft_client_requests_total", catalog)).toBe(7);
    expect(valueOf(samples, "weft_client_successes_total", catalog)).toBe(7);
    expect(valueOf(samples, "weft_client_failures_total", catalog)).toBe(0);
    expect(valueOf(samples, "weft_client_attempts_total", catalog)).toBe(7);
    expect(valueOf(samples, "weft_client_inflight", catalog)).toBe(0);
    expect(valueOf(samples, "weft_client_success_ratio", catalog)).toBe(1);
    expect(valueOf(samples, "weft_client_requests_per_second", catalog)).toBeGreaterThan(0);
    expect(valueOf(samples, "weft_client_latency_ms", { ...catalog, quantile: "0.99" })).toBeGreaterThan(0);
    expect(valueOf(samples, "weft_client_retry_budget", catalog)).toBeGreaterThan(0);
    expect(valueOf(samples, "weft_discovery_stale", { ...catalog, source: "static" })).toBe(0);
    let endpointRequests = 0;
    for (const url of urls) {
      const endpoint = { ...catalog, endpoint: url };
      endpointRequests += valueOf(samples, "weft_endpoint_requests_total", endpoint) ?? Number.NaN;
      expect(valueOf(samples, "weft_endpoint_failures_total", endpoint)).toBe(0);
      expect(valueOf(samples, "weft_endpoint_ejections_total", endpoint)).toBe(0);
      expect(valueOf(samples, "weft_endpoint_breaker_open", endpoint)).toBe(0);
      expect(valueOf(samples, "weft_endpoint_state", { ...endpoint, state: "healthy" })).toBe(1);
      expect(valueOf(samples, "weft_endpoint_state", { ...endpoint, state: "ejected" })).toBe(0);
    }
    expect(endpointRequests).toBe(7);
    // Labels are service, endpoint, state, source (and the summary's quantile) — never a path.
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual(["endpoint", "quantile", "service", "source", "state"]);
    expect(samples.some((s) => Object.values(s.labels).some((v) => v.includes("/v1/items")))).toBe(false);
  });

  it('escapes ", \\ and newline in label values, and keeps <script> as text', async () => {
    const name = 'we"ird\\name\nline<script>alert(1)</script>';
    const { mesh } = await meshWithTraffic(name, 2);
    const server = await admin(mesh);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain(
      'weft_client_requests_total{service="we\\"ird\\\\name\\nline<script>alert(1)</script>"} 2\n',
    );
    const { samples } = parsePrometheus(text);
    expect(valueOf(samples, "weft_client_requests_total", { service: name })).toBe(2);
    // Every line is a comment or a sample: the newline in the name did not split one.
    expect(text.split("\n").filter((l) => l.startsWith("line<script>"))).toEqual([]);
    const json = (await (await fetch(`${server.url}/snapshot.json`)).json()) as MeshSnapshot;
    expect(json.clients[0]!.service).toBe(name);
  });

  it("wants the token on every route when one is set: Authorization header or ?token=", async () => {
    const { mesh } = await meshWithTraffic();
    const token = "s3cret-Token_42";
    const server = await admin(mesh, { token });
    for (const route of ["", "/snapshot.json", "/metrics", "/events", "/nowhere"]) {
      const res = await fetch(`${server.url}${route}`);
      expect(res.status, `no token on ${route || "/admin"}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await res.arrayBuffer();
    }
    const wrong = await fetch(`${server.url}/snapshot.json`, { headers: { authorization: "Bearer s3cret-Token_43" } });
    expect(wrong.status).toBe(401);
    const wrongQuery = await fetch(`${server.url}/snapshot.json?token=s3cret`);
    expect(wrongQuery.status).toBe(401);
    const byHeader = await fetch(`${server.url}/snapshot.json`, { headers: { authorization: `Bearer ${token}` } });
    expect(byHeader.status).toBe(200);
    expect(((await byHeader.json()) as MeshSnapshot).clients).toHaveLength(1);
    const byQuery = await fetch(`${server.url}/metrics?token=${token}`);
    expect(byQuery.status).toBe(200);
    expect(await byQuery.text()).toContain("weft_client_requests_total");
    const page = await fetch(`${server.url}?token=${token}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toContain(token);
  });

  it("serves loopback Host names only (no DNS rebinding), GET and HEAD only, and 404 JSON elsewhere", async () => {
    const { mesh } = await meshWithTraffic();
    const server = await admin(mesh);
    const { port } = new URL(server.url);
    const raw = (
      method: string,
      path: string,
      host: string,
    ): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, method, path, headers: { host } }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        });
        req.once("error", reject).end();
      });
    expect((await raw("GET", "/admin/snapshot.json", "evil.example:80")).status).toBe(403);
    expect((await raw("GET", "/admin/snapshot.json", `localhost:${port}`)).status).toBe(200);
    const post = await raw("POST", "/admin/snapshot.json", `127.0.0.1:${port}`);
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
    const head = await raw("HEAD", "/admin/metrics", `127.0.0.1:${port}`);
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(Number(head.headers["content-length"])).toBeGreaterThan(0);
    const missing = await raw("GET", "/admin/nope", `127.0.0.1:${port}`);
    expect(missing.status).toBe(404);
    expect(missing.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(missing.body)).toMatchObject({ error: "not found" });
  });

  it("GET /admin/events sends a snapshot at once and another every intervalMs", async () => {
    const { mesh } = await meshWithTraffic();
    const server = await admin(mesh, { intervalMs: 100 });
    const opened = performance.now();
    const stream = await openEvents(`${server.url}/events`);
    defer(async () => stream.destroy());
    expect(stream.response.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    await until(() => stream.events.length >= 3, "three snapshot events", 5_000, 5);
    const [first, second, third] = stream.events;
    expect(first!.name).toBe("snapshot");
    expect(first!.at - opened).toBeLessThan(100);
    expect((JSON.parse(first!.data) as MeshSnapshot).clients[0]!.service).toBe("catalog");
    expect(second!.at - first!.at).toBeLessThan(600);
    expect(third!.at - second!.at).toBeGreaterThan(40);
  });

  it("GET /admin/events sends the histories whole once, then updates with their newest points only, which merge back into the whole", async () => {
    // The clients call an upstream that is itself a weft/server inbound ("upstream") in the mesh:
    // the servers' histories travel the same way as the clients'.
    const { mesh, clock, call } = await meshWithHistory(["catalog", "inventory"], 120, "upstream");
    const server = await admin(mesh, { intervalMs: 50 });
    const stream = await openEvents(`${server.url}/events`);
    defer(async () => stream.destroy());
    await until(() => stream.events.length >= 3, "three events", 5_000, 5);
    const whole = { catalog: 121, inventory: 121 };
    expect(stream.events[0]!.name).toBe("snapshot");
    expect(historyLengths(stream.events[0]!)).toEqual(whole);
    expect(serverHistoryLengths(stream.events[0]!)).toEqual({ upstream: 121 });

    // Time moves on a second at a time, with calls: each update carries the last second sent
    // (finished now) and the new one, still filling.
    let late: EventStream | undefined;
    for (let second = 0; second < 4; second++) {
      await call("catalog");
      clock.advance(1000);
      const seen = stream.events.length;
      await until(() => stream.events.length >= seen + 2, "two more events", 5_000, 5);
      if (second === 1) {
        // A page that opens now starts with a whole snapshot, then follows with updates.
        late = await openEvents(`${server.url}/events`);
        const opened = late;
        defer(async () => opened.destroy());
        await until(() => opened.events.length >= 2, "the late page's first events", 5_000, 5);
      }
    }
    const [first, ...rest] = stream.events;
    expect(rest.map((e) => e.name)).toEqual(rest.map(() => "update"));
    for (const lengths of [historyLengths, serverHistoryLengths]) {
      const updateLengths = rest.flatMap((e) => Object.values(lengths(e)));
      expect(updateLengths).toHaveLength(rest.length * (lengths === historyLengths ? 2 : 1));
      expect(Math.max(...updateLengths)).toBe(2);
      expect(Math.min(...updateLengths)).toBeGreaterThanOrEqual(1);
    }
    // Everything but the histories is the whole snapshot.
    const { clients: _, servers: __, ...head } = snapshotOf(rest.at(-1)!);
    expect(Object.keys(head)).toEqual(["takenAt"]);
    expect(Object.keys(snapshotOf(rest.at(-1)!).clients[0]!)).toEqual(Object.keys(snapshotOf(first!).clients[0]!));
    expect(Object.keys(snapshotOf(rest.at(-1)!).servers[0]!)).toEqual(Object.keys(snapshotOf(first!).servers[0]!));
    expect(late!.events[0]!.name).toBe("snapshot");
    expect(historyLengths(late!.events[0]!)).toEqual({ catalog: 123, inventory: 123 });
    expect(serverHistoryLengths(late!.events[0]!)).toEqual({ upstream: 123 });
    expect(
      late!.events.slice(1).every((e) => e.name === "update" && Object.values(historyLengths(e)).every((n) => n <= 2)),
    ).toBe(true);
    expect(late!.events.slice(1).every((e) => Object.values(serverHistoryLengths(e)).every((n) => n <= 2))).toBe(true);

    // Merged as the page merges them, the events give back the whole histories, point for point.
    const direct = (await (await fetch(`${server.url}/snapshot.json`)).json()) as MeshSnapshot;
    for (const events of [stream.events, late!.events]) {
      const merged = pageHistories(events);
      expect([...merged.keys()]).toEqual(["catalog", "inventory"]);
      for (const client of direct.clients) expect(merged.get(client.service)).toEqual(client.stats.history);
      const mergedServers = pageHistories(events, "servers");
      expect([...mergedServers.keys()]).toEqual(["upstream"]);
      expect(mergedServers.get("upstream")).toEqual(direct.servers[0]!.stats.history);
    }
    expect(direct.clients[0]!.stats.history).toHaveLength(125);
    expect(direct.servers[0]!.stats.history).toHaveLength(125);
    // The server served every call the clients made: 12 + 12 while the history built up, 4 since.
    expect(direct.servers[0]!.counters.requests).toBe(28);
  });

  it("GET /admin/events sends a client that appears in an update whole, and the page drops one that goes", async () => {
    const a = await meshWithHistory(["catalog"], 60);
    const b = await meshWithHistory(["inventory"], 200);
    let withInventory = false;
    const source = {
      snapshot: (): MeshSnapshot => {
        const snapshot = a.mesh.snapshot();
        return withInventory ? { ...snapshot, clients: [...snapshot.clients, ...b.mesh.snapshot().clients] } : snapshot;
      },
    };
    const server = scoped(await serveAdmin(source, { port: 0, intervalMs: 50 }));
    const stream = await openEvents(`${server.url}/events`);
    defer(async () => stream.destroy());
    await until(() => stream.events.length >= 2, "two events", 5_000, 5);
    withInventory = true;
    await until(() => stream.events.some((e) => "inventory" in historyLengths(e)), "an event with inventory", 5_000, 5);
    const appeared = stream.events.findIndex((e) => "inventory" in historyLengths(e));
    expect(stream.events[appeared]!.name).toBe("update");
    expect(historyLengths(stream.events[appeared]!)).toEqual({ catalog: 2, inventory: 201 });
    await until(() => stream.events.length >= appeared + 3, "two updates more", 5_000, 5);
    expect(historyLengths(stream.events[appeared + 1]!)).toEqual({ catalog: 2, inventory: 2 });
    expect(pageHistories(stream.events).get("inventory")).toEqual(b.mesh.snapshot().clients[0]!.stats.history);

    withInventory = false;
    const seen = stream.events.length;
    await until(() => stream.events.length >= seen + 2, "two events more", 5_000, 5);
    expect([...pageHistories(stream.events).keys()]).toEqual(["catalog"]);
    expect(pageHistories(stream.events).get("catalog")).toEqual(a.mesh.snapshot().clients[0]!.stats.history);
  });

  it("GET /admin/events sends a failure event when the snapshot throws, then an update with every second since the last good one", async () => {
    const { mesh, clock } = await meshWithHistory(["catalog"], 30);
    let failing = false;
    const source = {
      snapshot: (): MeshSnapshot => {
        if (failing) throw new Error("snapshot broke");
        return mesh.snapshot();
      },
    };
    const server = scoped(await serveAdmin(source, { port: 0, intervalMs: 50 }));
    const stream = await openEvents(`${server.url}/events`);
    defer(async () => stream.destroy());
    await until(() => stream.events.length >= 2, "two events", 5_000, 5);
    failing = true;
    await until(() => stream.events.some((e) => e.name === "failure"), "a failure event", 5_000, 5);
    clock.advance(3000);
    failing = false;
    const failed = stream.events.findIndex((e) => e.name === "failure");
    expect(JSON.parse(stream.events[failed]!.data)).toEqual({ error: "snapshot broke" });
    await until(
      () => stream.events.slice(failed).some((e) => e.name !== "failure"),
      "an event after the failures",
      5_000,
      5,
    );
    const after = stream.events.slice(failed).find((e) => e.name !== "failure")!;
    expect(after.name).toBe("update");
    expect(historyLengths(after)).toEqual({ catalog: 4 });
    expect(pageHistories(stream.events).get("catalog")).toEqual(mesh.snapshot().clients[0]!.stats.history);
  });

  it("close() ends an open event stream, closes the server and leaves no socket", async () => {
    const { mesh } = await meshWithTraffic();
    const server = await serveAdmin(mesh, { intervalMs: 100 });
    const { port } = new URL(server.url);
    const stream = await openEvents(`${server.url}/events`);
    await until(() => stream.events.length >= 1, "the first event", 5_000, 5);
    await server.close();
    await stream.ended;
    expect(stream.response.complete).toBe(true);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(port), "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(false))).once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
    // A second close is harmless.
    await server.close();
  });

  it("fails on bad options, naming the option and what is allowed", async () => {
    const mesh = scoped(createMesh());
    const cases: [unknown, RegExp][] = [
      [{ port: -1 }, /invalid option port: got -1; expected an integer from 0 to 65535/],
      [{ port: 70_000 }, /option port/],
      [{ port: "80" }, /option port: got "80"/],
      [{ host: "" }, /invalid option host: got ""/],
      [{ token: "" }, /invalid option token/],
      [{ token: "has space" }, /invalid option token: got a string of 9 characters/],
      [
        { host: "0.0.0.0" },
        /invalid option token: got undefined; expected a token when host is "0\.0\.0\.0", which is not loopback/,
      ],
      [{ host: "::" }, /a token when host is "::"/],
      [{ intervalMs: 0 }, /invalid option intervalMs: got 0; expected a number of milliseconds from 50 to 1000/],
      [{ intervalMs: 5000 }, /intervalMs/],
      [{ prot: 80 }, /unknown option prot for serveAdmin; allowed: port, host, token, intervalMs/],
      ["fast", /invalid option options/],
    ];
    for (const [options, message] of cases) {
      const error = await serveAdmin(mesh, options as Parameters<typeof serveAdmin>[1]).then(
        (s) => (void s.close(), undefined),
        (e: unknown) => e,
      );
      expect(isWeftError(error), JSON.stringify(options)).toBe(true);
      expect((error as Error).message).toMatch(message);
      expect((error as { code: string }).code).toBe("WEFT_ERR_INVALID_OPTIONS");
    }
    await expect(serveAdmin(null as unknown as Mesh)).rejects.toThrow(/invalid option mesh/);
  });
});

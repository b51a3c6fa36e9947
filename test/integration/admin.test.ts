/**
 * weft/admin over real HTTP: serveAdmin on port 0 in front of a real mesh whose clients call real
 * upstream servers on 127.0.0.1.
 */
import http from "node:http";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { createMesh, isWeftError, staticDiscovery, type Mesh, type MeshSnapshot } from "weft";
import { serveAdmin, type AdminServer } from "weft/admin";
import { defer, scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";
import { openEvents, parsePrometheus, valueOf } from "../helpers/admin.js";

async function meshWithTraffic(service = "catalog", calls = 7): Promise<{ mesh: Mesh; urls: string[] }> {
  const a = await server((_req, res) => res.end("a"));
  const b = await server((_req, res) => res.end("b"));
  const mesh = scoped(createMesh());
  const client = mesh.client(service, { discovery: staticDiscovery([a.url, b.url]) });
  for (let i = 0; i < calls; i++) await (await client.request({ path: `/v1/items/${i}` })).text();
  return { mesh, urls: [a.url, b.url] };
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
    expect(text).toContain('weft_client_requests_total{service="we\\"ird\\\\name\\nline<script>alert(1)</script>"} 2\n');
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
    const raw = (method: string, path: string, host: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> =>
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

import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defer, server } from "../../test/helpers/scope.js";
import {
  createMesh,
  fileConfig,
  seededRandom,
  staticDiscovery,
  type Mesh,
  type MeshSnapshot,
  type ServerSnapshot,
} from "../index.js";
import { inbound, type Inbound, type InboundOptions } from "../server/index.js";
import { escapeLabelValue, PROMETHEUS_METRICS, renderPrometheus } from "./prometheus.js";

let mesh: Mesh | undefined;
const servers: Inbound[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await mesh?.close();
  mesh = undefined;
});

/** A real snapshot of an idle client, with fields replaced to reach the corners of the format. */
function snapshot(edit: (s: MeshSnapshot["clients"][number]) => MeshSnapshot["clients"][number]): MeshSnapshot {
  mesh = createMesh();
  mesh.client("catalog", { discovery: staticDiscovery(["http://127.0.0.1:9", "http://127.0.0.1:10"]) });
  const real = mesh.snapshot();
  return { ...real, clients: real.clients.map(edit) };
}

/** A real snapshot of an idle server that joined a mesh (no client), with fields replaced. */
function serverSnapshot(
  options: Omit<InboundOptions, "service" | "mesh">,
  edit: (s: ServerSnapshot) => ServerSnapshot = (s) => s,
  service = "orders",
): MeshSnapshot {
  mesh = createMesh();
  servers.push(inbound({ service, mesh, ...options }));
  const real = mesh.snapshot();
  expect(real.servers).toHaveLength(1);
  return { ...real, servers: real.servers.map(edit) };
}

describe("renderPrometheus", () => {
  it("escapes backslash, double quote and newline in label values, and nothing else", () => {
    expect(escapeLabelValue('a\\b"c\nd<script>')).toBe('a\\\\b\\"c\\nd<script>');
  });

  it("escapes every label it writes: service, endpoint and source", () => {
    const odd = 'x"y\\z\nw';
    const text = renderPrometheus(
      snapshot((c) => ({
        ...c,
        service: `svc ${odd}`,
        discovery: { ...c.discovery, source: `dns:${odd}` },
        endpoints: c.endpoints.map((e, i) => (i === 0 ? { ...e, url: `http://h/${odd}` } : e)),
      })),
    );
    const escaped = 'x\\"y\\\\z\\nw';
    expect(text).toContain(`weft_endpoint_inflight{service="svc ${escaped}",endpoint="http://h/${escaped}"} 0\n`);
    expect(text).toContain(`weft_discovery_stale{service="svc ${escaped}",source="dns:${escaped}"} 0\n`);
    // One line per sample: no raw newline slipped into a label.
    for (const line of text.trimEnd().split("\n"))
      expect(line).toMatch(/^(# (HELP|TYPE) weft_\w+ .+|weft_\w+(\{.*\})? \S+)$/);
  });

  it("writes HELP and TYPE for every metric, once, in order", () => {
    const text = renderPrometheus(snapshot((c) => c));
    const types = [...text.matchAll(/^# TYPE (\S+) (counter|gauge)$/gm)].map((m) => m[1]);
    expect(types).toEqual(PROMETHEUS_METRICS);
    expect([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1])).toEqual(PROMETHEUS_METRICS);
    for (const name of PROMETHEUS_METRICS) {
      if (name.endsWith("_total")) expect(text).toContain(`# TYPE ${name} counter`);
    }
  });

  it("sets 1 on the endpoint's state and breaker state and 0 on the others", () => {
    const text = renderPrometheus(
      snapshot((c) => ({
        ...c,
        endpoints: c.endpoints.map((e, i) =>
          i === 0 ? { ...e, state: "ejected" as const, breaker: "halfOpen" as const } : e,
        ),
      })),
    );
    const ep = 'service="catalog",endpoint="http://127.0.0.1:9"';
    expect(text).toContain(`weft_endpoint_state{${ep},state="ejected"} 1\n`);
    expect(text).toContain(`weft_endpoint_state{${ep},state="healthy"} 0\n`);
    expect(text).toContain(`weft_endpoint_breaker_state{${ep},state="halfOpen"} 1\n`);
    expect(text).toContain(`weft_endpoint_breaker_open{${ep}} 0\n`);
    expect(text).toContain(`weft_endpoint_state{service="catalog",endpoint="http://127.0.0.1:10",state="healthy"} 1\n`);
  });

  it("leaves out what the snapshot does not know: latency and success ratio before any call, the budget when off", () => {
    const text = renderPrometheus(snapshot((c) => ({ ...c, retryBudget: null })));
    expect(text).not.toMatch(/^weft_client_latency_ms\{/m);
    expect(text).not.toMatch(/^weft_client_success_ratio\{/m);
    expect(text).not.toMatch(/^weft_client_retry_budget\{/m);
    expect(text).toContain('weft_client_requests_total{service="catalog"} 0\n');
  });

  it("writes each endpoint's connections as the transport reports them, HTTP/2's counters when there, and nothing when it says nothing", () => {
    const text = renderPrometheus(
      snapshot((c) => ({
        ...c,
        endpoints: c.endpoints.map((e, i) => ({
          ...e,
          connections: i === 0 ? { open: 2, active: 5, queued: 1, goaways: 3, deadSessions: 1, pingRttMs: 0.4 } : null,
        })),
      })),
    );
    const at = 'service="catalog",endpoint="http://127.0.0.1:9"';
    expect(text).toContain(`weft_endpoint_connections{${at}} 2\n`);
    expect(text).toContain(`weft_endpoint_connection_requests{${at}} 5\n`);
    expect(text).toContain(`weft_endpoint_connection_queued{${at}} 1\n`);
    expect(text).toContain(`weft_endpoint_goaways_total{${at}} 3\n`);
    expect(text).toContain(`weft_endpoint_dead_sessions_total{${at}} 1\n`);
    expect(text).not.toContain('weft_endpoint_connections{service="catalog",endpoint="http://127.0.0.1:10"}');
    // The undici transport's shape: no HTTP/2 counters.
    const h1 = renderPrometheus(
      snapshot((c) => ({
        ...c,
        endpoints: c.endpoints.map((e) => ({ ...e, connections: { open: 1, active: 0, queued: 0 } })),
      })),
    );
    expect(h1).toContain(`weft_endpoint_connections{${at}} 1\n`);
    expect(h1).not.toMatch(/^weft_endpoint_goaways_total\{/m);
  });

  it("writes a server's state, in-flight, counters, limit, shed by priority and authz by decision", () => {
    const text = renderPrometheus(
      serverSnapshot({ shed: { limit: 8 }, authz: { rules: [{ paths: ["/public"] }] } }, (s) => ({
        ...s,
        state: "draining",
        inflight: 3,
        counters: { ...s.counters, requests: 40, errors: 2, aborted: 1, expired: 4, badDeadline: 5 },
        admission: { ...s.admission!, shed: { critical: 0, high: 1, normal: 6, low: 9 } },
        authz: { allow: 30, deny: 7, unauthenticated: 2, malformed: 1 },
      })),
    );
    const orders = 'service="orders"';
    expect(text).toContain(`weft_server_state{${orders},state="draining"} 1\n`);
    expect(text).toContain(`weft_server_state{${orders},state="serving"} 0\n`);
    expect(text).toContain(`weft_server_state{${orders},state="closed"} 0\n`);
    expect(text).toContain(`weft_server_inflight{${orders}} 3\n`);
    expect(text).toContain(`weft_server_requests_total{${orders}} 40\n`);
    expect(text).toContain(`weft_server_errors_total{${orders}} 2\n`);
    expect(text).toContain(`weft_server_aborted_total{${orders}} 1\n`);
    expect(text).toContain(`weft_server_deadline_expired_total{${orders}} 4\n`);
    expect(text).toContain(`weft_server_deadline_malformed_total{${orders}} 5\n`);
    expect(text).toContain(`weft_server_concurrency_limit{${orders}} 8\n`);
    expect(text).toContain(`weft_server_concurrency_adaptive{${orders}} 0\n`);
    expect(text).toContain(`weft_server_shed_total{${orders},priority="critical"} 0\n`);
    expect(text).toContain(`weft_server_shed_total{${orders},priority="high"} 1\n`);
    expect(text).toContain(`weft_server_shed_total{${orders},priority="normal"} 6\n`);
    expect(text).toContain(`weft_server_shed_total{${orders},priority="low"} 9\n`);
    expect(text).toContain(`weft_server_authz_total{${orders},decision="allow"} 30\n`);
    expect(text).toContain(`weft_server_authz_total{${orders},decision="deny"} 7\n`);
    expect(text).toContain(`weft_server_authz_total{${orders},decision="unauthenticated"} 2\n`);
    expect(text).toContain(`weft_server_authz_total{${orders},decision="malformed"} 1\n`);
    expect(text).toContain(`weft_server_requests_per_second{${orders}} 0\n`);
    // Labels of the server families: service and the fixed sets only.
    const labels = new Set(
      [...text.matchAll(/^weft_server_\w+\{(.*)\} \S+$/gm)].flatMap((m) =>
        [...m[1]!.matchAll(/(\w+)="/g)].map((l) => l[1]),
      ),
    );
    expect([...labels].sort()).toEqual(["decision", "priority", "service", "state"]);
  });

  it("marks an adaptive limit, and leaves out shed, authz and the limit of a server that has them off", () => {
    const adaptive = renderPrometheus(serverSnapshot({ shed: { adaptive: true, initialLimit: 20 } }));
    expect(adaptive).toContain('weft_server_concurrency_adaptive{service="orders"} 1\n');
    expect(adaptive).toContain('weft_server_concurrency_limit{service="orders"} 20\n');
    expect(adaptive).not.toMatch(/^weft_server_authz_total\{/m);
    const plain = renderPrometheus(serverSnapshot({}));
    for (const name of [
      "weft_server_shed_total",
      "weft_server_authz_total",
      "weft_server_concurrency_limit",
      "weft_server_concurrency_adaptive",
      "weft_server_latency_ms",
      "weft_server_success_ratio",
    ]) {
      expect(plain, name).not.toMatch(new RegExp(`^${name}\\{`, "m"));
    }
    expect(plain).toContain('weft_server_state{service="orders",state="serving"} 1\n');
    expect(plain).toContain('weft_server_requests_total{service="orders"} 0\n');
  });

  it("escapes a server's service label like every other", () => {
    const odd = 'x"y\\z\nw';
    const text = renderPrometheus(serverSnapshot({ shed: { limit: 4 } }, (s) => s, `svc ${odd}`));
    const escaped = 'x\\"y\\\\z\\nw';
    expect(text).toContain(`weft_server_inflight{service="svc ${escaped}"} 0\n`);
    expect(text).toContain(`weft_server_shed_total{service="svc ${escaped}",priority="low"} 0\n`);
    expect(text).toContain(`weft_server_state{service="svc ${escaped}",state="serving"} 1\n`);
    for (const line of text.trimEnd().split("\n"))
      expect(line).toMatch(/^(# (HELP|TYPE) weft_\w+ .+|weft_\w+(\{.*\})? \S+)$/);
  });

  it("writes no server sample for a snapshot without servers (a source older than weft/server)", () => {
    const { servers: _, ...old } = snapshot((c) => c);
    const text = renderPrometheus(old as MeshSnapshot);
    expect(text).not.toMatch(/^weft_server_\w+\{/m);
    expect(text).toContain("# TYPE weft_server_state gauge\n");
    expect(text).toContain('weft_client_requests_total{service="catalog"} 0\n');
  });
  it("writes TLS expiry, material version, refusals, identity and handshake failures per side, and nothing for a plain client or server", () => {
    const material = {
      source: "files" as const,
      version: 3,
      appliedAt: 0,
      identity: "spiffe://example.org/ns/shop/sa/web",
      serial: "1A",
      notAfter: "2027-01-01T00:00:00.000Z",
      expiresInMs: 86_400_000,
      rejected: 2,
      lastRejection: null,
    };
    const plain = renderPrometheus(snapshot((c) => c));
    expect(plain).not.toMatch(/^weft_tls_\w+\{/m);
    const text = renderPrometheus(
      snapshot((c) => ({
        ...c,
        tls: {
          identity: ["spiffe://example.org/ns/shop/sa/orders"],
          insecure: false,
          material,
          identityFailures: 4,
          lastIdentityFailure: null,
          tlsFailures: { CERT_HAS_EXPIRED: 1 },
        },
      })),
    );
    expect(text).toContain('weft_tls_certificate_expiry_seconds{service="catalog",side="client"} 86400');
    expect(text).toContain('weft_tls_material_version{service="catalog",side="client"} 3');
    expect(text).toContain('weft_tls_material_rejected_total{service="catalog",side="client"} 2');
    expect(text).toContain('weft_client_identity_failures_total{service="catalog"} 4');
    expect(text).toContain(
      'weft_tls_handshake_failures_total{service="catalog",side="client",reason="CERT_HAS_EXPIRED"} 1',
    );
    const server = renderPrometheus(
      serverSnapshot({}, (s) => ({
        ...s,
        tls: {
          clientCert: "require",
          material: { ...material, expiresInMs: -1000 },
          handshakeFailures: { ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 2 },
        },
      })),
    );
    expect(server).toContain('weft_tls_certificate_expiry_seconds{service="orders",side="server"} -1');
    expect(server).toContain(
      'weft_tls_handshake_failures_total{service="orders",side="server",reason="ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"} 2',
    );
  });

  it("writes each route's calls by backend, its faults and its mirrored copies, and the routes in code as config version code", async () => {
    const [v1, v2] = await Promise.all([server(), server()]);
    mesh = createMesh();
    const client = mesh.client("catalog", {
      discovery: staticDiscovery([
        { url: v1.url, metadata: { version: "v1" } },
        { url: v2.url, metadata: { version: "v2" } },
      ]),
      random: seededRandom(5),
      routes: [
        { name: 'canary "x"\\', match: { headers: { "x-canary": "1" } }, backends: [{ subset: { version: "v2" } }] },
        { match: { path: "/drill/*" }, fault: { abort: { percent: 100, status: 503 } } },
        {
          match: { path: "/v1/*" },
          backends: [
            { subset: { version: "v1" }, weight: 75 },
            { subset: { version: "v2" }, weight: 25 },
          ],
          mirror: { subset: { version: "v2" }, percent: 100 },
        },
        // Two unnamed routes by header: "(by header)" and "(by header) #2".
        { match: { headers: { "x-a": "1" } } },
        { match: { headers: { "x-b": "1" } } },
      ],
    });
    mesh.client("plain", { discovery: staticDiscovery([v1.url]) });
    const call = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
      const res = await client.request({ path, headers });
      await res.text();
      return res.status;
    };
    expect(await call("/v1/a", { "x-canary": "1" })).toBe(200);
    for (let i = 0; i < 3; i++) expect(await call(`/drill/${i}`)).toBe(503);
    for (let i = 0; i < 40; i++) expect(await call(`/v1/items/${i}`)).toBe(200);
    expect(await call("/x", { "x-a": "1" })).toBe(200);
    expect(await call("/x", { "x-b": "1" })).toBe(200);
    expect(await call("/other")).toBe(200);
    await expect.poll(() => client.snapshot().routing!.routes[2]!.mirror!.inflight).toBe(0);

    const routing = client.snapshot().routing!;
    const split = routing.routes[2]!.backends;
    expect(split[0]!.calls + split[1]!.calls).toBe(40);
    expect(split[1]!.calls).toBeGreaterThan(0);
    const text = renderPrometheus(mesh.snapshot());
    const catalog = 'service="catalog"';
    expect(text).toContain(`weft_route_calls_total{${catalog},route="canary \\"x\\"\\\\",backend="version=v2"} 1\n`);
    // Aborted by the route's fault: counted as faults, never sent to a backend.
    expect(text).toContain(`weft_route_calls_total{${catalog},route="/drill/*",backend="self"} 0\n`);
    expect(text).toContain(
      `weft_route_calls_total{${catalog},route="/v1/*",backend="version=v1"} ${split[0]!.calls}\n`,
    );
    expect(text).toContain(
      `weft_route_calls_total{${catalog},route="/v1/*",backend="version=v2"} ${split[1]!.calls}\n`,
    );
    expect(text).toContain(`weft_route_calls_total{${catalog},route="(by header)",backend="self"} 1\n`);
    expect(text).toContain(`weft_route_calls_total{${catalog},route="(by header) #2",backend="self"} 1\n`);
    expect(text).toContain(`weft_route_calls_total{${catalog},route="default",backend="self"} 1\n`);
    expect(text).toContain(`weft_route_faults_total{${catalog},route="/drill/*",kind="delay"} 0\n`);
    expect(text).toContain(`weft_route_faults_total{${catalog},route="/drill/*",kind="abort"} 3\n`);
    const mirrored = { sent: 40, ok: 40, failed: 0, dropped: 0, skipped: 0, unavailable: 0 };
    for (const [result, n] of Object.entries(mirrored))
      expect(text).toContain(`weft_route_mirror_total{${catalog},route="/v1/*",result="${result}"} ${n}\n`);
    // Faults and mirror only for the routes that have them.
    expect(text.match(/^weft_route_faults_total\{/gm)).toHaveLength(2);
    expect(text.match(/^weft_route_mirror_total\{/gm)).toHaveLength(6);
    // Every series once.
    const series = text
      .split("\n")
      .filter((l) => l.startsWith("weft_"))
      .map((l) => l.slice(0, l.lastIndexOf(" ")));
    expect(new Set(series).size).toBe(series.length);
    expect(text).toContain(`weft_config_info{${catalog},source="code",version="code"} 1\n`);
    // No config source: no rejections or staleness to report; no routes: nothing at all.
    expect(text).not.toMatch(/^weft_config_(rejected_total|stale)\{/m);
    expect(text).not.toMatch(/^weft_(route|config)_\w+\{service="plain"/m);
  });

  it("writes the config version in force and its source, rejections and staleness, from a real config file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-prometheus-"));
    defer(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "catalog.json");
    /** A new file renamed over the old one, as config tools write. */
    const publish = async (text: string): Promise<void> => {
      await writeFile(`${file}.tmp`, text);
      await rename(`${file}.tmp`, file);
    };
    // Every call is aborted by the route's fault: nothing leaves the process.
    const drill = (name: string): string =>
      JSON.stringify({ routes: [{ name, fault: { abort: { percent: 100, status: 503 } } }] });
    await publish(drill("drill"));
    const warnings: string[] = [];
    mesh = createMesh({ onWarning: (m) => warnings.push(m) });
    const client = mesh.client("catalog", {
      discovery: staticDiscovery(["http://127.0.0.1:9"]),
      configSource: fileConfig(file, { pollMs: 50, debounceMs: 5 }),
    });
    const routing = () => client.snapshot().routing!;
    await expect.poll(() => routing().version).toMatch(/^sha256:[0-9a-f]{12}$/);
    const first = routing().version;
    for (let i = 0; i < 3; i++) expect((await client.request({ path: `/items/${i}` })).status).toBe(503);
    const metrics = (): string => renderPrometheus(mesh!.snapshot());
    const catalog = 'service="catalog"';
    let text = metrics();
    expect(text).toContain(`weft_config_info{${catalog},source="file:${file}",version="${first}"} 1\n`);
    expect(text).toContain(`weft_config_rejected_total{${catalog}} 0\n`);
    expect(text).toContain(`weft_config_stale{${catalog}} 0\n`);
    expect(text).toContain(`weft_route_calls_total{${catalog},route="drill",backend="self"} 0\n`);
    expect(text).toContain(`weft_route_faults_total{${catalog},route="drill",kind="abort"} 3\n`);

    // A version that fails validation: counted, and the version in force stays.
    await publish(JSON.stringify({ routes: [{ name: "drill", backends: [{ weight: -5 }] }] }));
    await expect.poll(() => routing().config?.rejected).toBe(1);
    text = metrics();
    expect(text).toContain(`weft_config_rejected_total{${catalog}} 1\n`);
    expect(text).toContain(`weft_config_info{${catalog},source="file:${file}",version="${first}"} 1\n`);

    // A document that does not parse: the source is stale, the version in force still serves.
    await publish("{ routes: [");
    await expect.poll(() => routing().config?.stale).toBe(true);
    expect(metrics()).toContain(`weft_config_stale{${catalog}} 1\n`);

    // A new version applies: one info series for it, and its routes' counts start at 0.
    await publish(drill("drill-2"));
    await expect.poll(() => routing().version).not.toBe(first);
    text = metrics();
    expect(text.match(/^weft_config_info\{.*$/gm)).toEqual([
      `weft_config_info{${catalog},source="file:${file}",version="${routing().version}"} 1`,
    ]);
    expect(text).toContain(`weft_config_stale{${catalog}} 0\n`);
    expect(text).toContain(`weft_route_calls_total{${catalog},route="drill-2",backend="self"} 0\n`);
    expect(text).not.toContain('route="drill"');
    expect(warnings.filter((w) => /rejected/.test(w))).toHaveLength(1);
  });
});

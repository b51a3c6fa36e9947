/**
 * The mesh snapshot in the Prometheus text exposition format (version 0.0.4), for users who scrape
 * Prometheus and run no OpenTelemetry SDK. A pure function of the snapshot: same figures as
 * `/admin/snapshot.json`, no state of its own.
 *
 * Label cardinality is bounded by the mesh's shape: labels are only `service`, `endpoint` (the
 * endpoint's URL as discovery gave it), `state` (a fixed set) and `source` (the discovery source)
 * — never a request path or an id. A server (`weft/server`'s `inbound({ mesh })`, the snapshot's
 * `servers`) adds only fixed sets: `priority` (its four classes) and `decision` (authorization's
 * four answers); its routes are left to the OpenTelemetry metrics, which name route templates. A
 * client's routes (`snapshot().routing`) add `route` (the route's name, given in code or config or
 * made from its method and path pattern: a config entry, never a request's path), `backend` (the
 * backend's label: `version=v2`, `service:catalog-v2`), the fixed sets `kind` and `result`, and
 * the config's `source` and `version` (one series per version applied, like a build's info).
 *
 * Rates, ratios and latency quantiles are the snapshot's own, over its recent window (10 s),
 * exposed as gauges the way a Hystrix stream or Finagle's `/admin/metrics.json` does: Prometheus
 * can chart them as they are, while the `_total` counters remain for `rate()`. The route counters
 * belong to the config version in force and start again at 0 when a new one applies; they stay
 * counters, as `rate()` and `increase()` take a drop for a reset (as after a restart), and
 * `weft_config_info` shows when the version changed.
 *
 * Format reference: https://prometheus.io/docs/instrumenting/exposition_formats/ — label values
 * escape `\`, `"` and newline; HELP text escapes `\` and newline.
 */
import type {
  ClientSnapshot,
  EndpointHealth,
  EndpointSnapshot,
  MeshSnapshot,
  RoutingSnapshot,
  ServerSnapshot,
  ServerState,
} from "../index.js";

/** The `Content-Type` of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [labels: Labels, value: number];

interface Family {
  readonly name: string;
  readonly type: "counter" | "gauge";
  readonly help: string;
  readonly samples: (snapshot: MeshSnapshot) => Iterable<Sample>;
}

/** Every endpoint state, so each endpoint has a 1 on one `weft_endpoint_state` series and 0 on the others. */
const STATES: readonly EndpointHealth[] = ["healthy", "probing", "ejected", "draining"];
const BREAKER_STATES: readonly EndpointSnapshot["breaker"][] = ["closed", "open", "halfOpen"];
const SERVER_STATES: readonly ServerState[] = ["serving", "draining", "closed"];
type Priority = keyof NonNullable<ServerSnapshot["admission"]>["shed"];
type Decision = keyof NonNullable<ServerSnapshot["authz"]>;
const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];
const DECISIONS: readonly Decision[] = ["allow", "deny", "unauthenticated", "malformed"];

const perClient = (value: (c: ClientSnapshot) => number | null | undefined) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const client of snapshot.clients) {
      const v = value(client);
      if (typeof v === "number") yield [{ service: client.service }, v];
    }
  };

const perEndpoint = (value: (e: EndpointSnapshot) => number | null) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const client of snapshot.clients) {
      for (const endpoint of client.endpoints) {
        const v = value(endpoint);
        if (v !== null) yield [{ service: client.service, endpoint: endpoint.url }, v];
      }
    }
  };

/** The snapshot's servers (none from a source older than weft/server, whose snapshot has no `servers`). */
function serversOf(snapshot: MeshSnapshot): readonly ServerSnapshot[] {
  return (snapshot as { readonly servers?: readonly ServerSnapshot[] }).servers ?? [];
}

const perServer = (value: (s: ServerSnapshot) => number | null | undefined) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const server of serversOf(snapshot)) {
      const v = value(server);
      if (typeof v === "number") yield [{ service: server.service }, v];
    }
  };

/** One sample per server and key of a fixed set (`label`: its name); none for a server where `counts` is null. */
const perServerKey = <K extends string>(
  label: string,
  keys: readonly K[],
  counts: (s: ServerSnapshot) => Readonly<Record<K, number>> | null,
) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const server of serversOf(snapshot)) {
      const values = counts(server);
      if (values !== null) for (const key of keys) yield [{ service: server.service, [label]: key }, values[key]];
    }
  };

/** The client's routing; null without routes, and from a source older than routing, whose snapshot has none. */
function routingOf(client: ClientSnapshot): RoutingSnapshot | null {
  return (client as { readonly routing?: RoutingSnapshot | null }).routing ?? null;
}

const perRoutedClient = (value: (r: RoutingSnapshot) => number | null) =>
  perClient((c) => {
    const routing = routingOf(c);
    return routing === null ? null : value(routing);
  });

type Route = RoutingSnapshot["routes"][number];

/**
 * One sample per client, route and key of `counts` (`label`: the key's name). Routes that share a
 * name (two unnamed routes by header are both `(by header)`; a route may be named `default`) share
 * their series: their counts are added, as a series may be written once.
 */
const perRoute = (label: string, counts: (r: Route) => Iterable<readonly [key: string, count: number]>) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const client of snapshot.clients) {
      const routing = routingOf(client);
      if (routing === null) continue;
      const byRoute = new Map<string, Map<string, number>>();
      for (const route of routing.routes) {
        let byKey = byRoute.get(route.name);
        if (byKey === undefined) byRoute.set(route.name, (byKey = new Map<string, number>()));
        for (const [key, count] of counts(route)) byKey.set(key, (byKey.get(key) ?? 0) + count);
      }
      for (const [route, byKey] of byRoute)
        for (const [key, count] of byKey) yield [{ service: client.service, route, [label]: key }, count];
    }
  };

/** One sample per endpoint and state: 1 for the state the endpoint is in, 0 for the others. */
const perEndpointState = (states: readonly string[], stateOf: (e: EndpointSnapshot) => string) =>
  function* (snapshot: MeshSnapshot): Iterable<Sample> {
    for (const client of snapshot.clients) {
      for (const endpoint of client.endpoints) {
        const current = stateOf(endpoint);
        for (const state of states)
          yield [{ service: client.service, endpoint: endpoint.url, state }, current === state ? 1 : 0];
      }
    }
  };

const FAMILIES: readonly Family[] = [
  {
    name: "weft_client_requests_total",
    type: "counter",
    help: "Calls made through the client (as the caller sees them, retries and hedges not counted).",
    samples: perClient((c) => c.counters.calls),
  },
  {
    name: "weft_client_successes_total",
    type: "counter",
    help: "Calls the classifier judged successful.",
    samples: perClient((c) => c.counters.successes),
  },
  {
    name: "weft_client_failures_total",
    type: "counter",
    help: "Calls the classifier judged failed.",
    samples: perClient((c) => c.counters.failures),
  },
  {
    name: "weft_client_attempts_total",
    type: "counter",
    help: "Attempts sent to endpoints, retries and hedges included.",
    samples: perClient((c) => c.counters.attempts),
  },
  {
    name: "weft_client_timeouts_total",
    type: "counter",
    help: "Calls that ended on an attempt or total timeout.",
    samples: perClient((c) => c.counters.timeouts),
  },
  {
    name: "weft_client_inflight",
    type: "gauge",
    help: "Calls in flight now.",
    samples: perClient((c) => c.counters.inflight),
  },
  {
    name: "weft_client_requests_per_second",
    type: "gauge",
    help: "Calls per second over the recent window (10 s).",
    samples: perClient((c) => c.stats.window.requestsPerSecond),
  },
  {
    name: "weft_client_success_ratio",
    type: "gauge",
    help: "Successful calls over judged calls (0-1) in the recent window; absent with no judged call.",
    samples: perClient((c) => (c.stats.window.successPercent === null ? null : c.stats.window.successPercent / 100)),
  },
  {
    name: "weft_client_retries_per_second",
    type: "gauge",
    help: "Retries per second over the recent window.",
    samples: perClient((c) => c.stats.window.retriesPerSecond),
  },
  {
    name: "weft_client_hedges_per_second",
    type: "gauge",
    help: "Hedged (backup) requests per second over the recent window.",
    samples: perClient((c) => c.stats.window.hedgesPerSecond),
  },
  {
    name: "weft_client_latency_ms",
    type: "gauge",
    help: "Call latency quantiles over the recent window, ms (histogram-estimated, within 12.5 %).",
    *samples(snapshot) {
      for (const client of snapshot.clients) {
        const latency = client.stats.window.latencyMs;
        if (latency === null) continue;
        yield [{ service: client.service, quantile: "0.5" }, latency.p50];
        yield [{ service: client.service, quantile: "0.9" }, latency.p90];
        yield [{ service: client.service, quantile: "0.99" }, latency.p99];
      }
    },
  },
  {
    name: "weft_client_retry_budget",
    type: "gauge",
    help: "Retry tokens available now; absent when the client has no retry budget.",
    samples: perClient((c) => c.retryBudget),
  },
  {
    name: "weft_client_panic",
    type: "gauge",
    help: "1 while too few endpoints are available and the balancer uses all of them (panic mode).",
    samples: perClient((c) => (c.panic ? 1 : 0)),
  },
  {
    name: "weft_endpoint_inflight",
    type: "gauge",
    help: "Attempts in flight to the endpoint.",
    samples: perEndpoint((e) => e.inflight),
  },
  {
    name: "weft_endpoint_requests_total",
    type: "counter",
    help: "Attempts the endpoint answered (or failed).",
    samples: perEndpoint((e) => e.requests),
  },
  {
    name: "weft_endpoint_failures_total",
    type: "counter",
    help: "Attempts to the endpoint the classifier judged failed.",
    samples: perEndpoint((e) => e.failures),
  },
  {
    name: "weft_endpoint_latency_ms",
    type: "gauge",
    help: "The latency the balancer reads for the endpoint now (peak EWMA, decayed), ms.",
    samples: perEndpoint((e) => e.latencyMs),
  },
  {
    name: "weft_endpoint_ejections_total",
    type: "counter",
    help: "Times outlier detection ejected the endpoint.",
    samples: perEndpoint((e) => e.ejections),
  },
  {
    name: "weft_endpoint_state",
    type: "gauge",
    help: "1 for the endpoint's current state, 0 for the others.",
    samples: perEndpointState(STATES, (e) => e.state),
  },
  {
    name: "weft_endpoint_stalled",
    type: "gauge",
    help: "1 while the endpoint's attempts in flight are on average ≥ 1 s and ≥ 10× its latency estimate old (no answer: frozen, black-holed).",
    samples: perEndpoint((e) => (e.stalledForMs === null ? 0 : 1)),
  },
  // What the transport holds to the endpoint (absent when it says nothing: fetch, got, gRPC).
  {
    name: "weft_endpoint_connections",
    type: "gauge",
    help: "Connections open to the endpoint: HTTP/1.1 sockets, HTTP/2 sessions.",
    samples: perEndpoint((e) => e.connections?.open ?? null),
  },
  {
    name: "weft_endpoint_connection_requests",
    type: "gauge",
    help: "Requests on the endpoint's connections now (HTTP/2: streams open).",
    samples: perEndpoint((e) => e.connections?.active ?? null),
  },
  {
    name: "weft_endpoint_connection_queued",
    type: "gauge",
    help: "Requests waiting for a connection or a stream slot to the endpoint.",
    samples: perEndpoint((e) => e.connections?.queued ?? null),
  },
  {
    name: "weft_endpoint_goaways_total",
    type: "counter",
    help: "HTTP/2 sessions to the endpoint that received a GOAWAY.",
    samples: perEndpoint((e) => e.connections?.goaways ?? null),
  },
  {
    name: "weft_endpoint_dead_sessions_total",
    type: "counter",
    help: "HTTP/2 sessions to the endpoint dropped because a PING went unanswered.",
    samples: perEndpoint((e) => e.connections?.deadSessions ?? null),
  },
  {
    name: "weft_endpoint_breaker_open",
    type: "gauge",
    help: "1 while the endpoint's circuit breaker is open (half-open and closed: 0).",
    samples: perEndpoint((e) => (e.breaker === "open" ? 1 : 0)),
  },
  {
    name: "weft_endpoint_breaker_state",
    type: "gauge",
    help: "1 for the state of the endpoint's circuit breaker (closed, open, halfOpen), 0 for the others.",
    samples: perEndpointState(BREAKER_STATES, (e) => e.breaker),
  },
  {
    name: "weft_discovery_stale",
    type: "gauge",
    help: "1 while the discovery source is failing and its last good answer keeps serving.",
    *samples(snapshot) {
      for (const client of snapshot.clients)
        yield [{ service: client.service, source: client.discovery.source }, client.discovery.stale ? 1 : 0];
    },
  },
  // Routing: each route's calls, faults and mirrored copies, of the config version in force.
  {
    name: "weft_route_calls_total",
    type: "counter",
    help: "Calls each route sent on, by the backend its split chose (a call its fault injection aborted is counted in weft_route_faults_total, not here); the last route, default, is what no route took; backend self is the client's own endpoints. Counts start again at 0 when a new config version applies (a counter reset).",
    samples: perRoute("backend", (r) => r.backends.map((b) => [b.backend, b.calls] as const)),
  },
  {
    name: "weft_route_faults_total",
    type: "counter",
    help: "Calls the route's fault injection delayed (kind delay) or aborted (kind abort); a call may be both. Absent for a route without faults. Starts again at 0 with each config version.",
    samples: perRoute("kind", (r) =>
      r.faults === null
        ? []
        : [
            ["delay", r.faults.delayed],
            ["abort", r.faults.aborted],
          ],
    ),
  },
  {
    name: "weft_route_mirror_total",
    type: "counter",
    help: "Mirrored copies by result: sent (= ok + failed + in flight), ok (answered below 500), failed, dropped (too many in flight), skipped (a body that cannot be sent twice), unavailable (the target had no ready endpoint: not made); do not sum over result. Absent for a route without a mirror. Starts again at 0 with each config version.",
    samples: perRoute("result", (r) => {
      const m = r.mirror;
      if (m === null) return [];
      return [
        ["sent", m.sent],
        ["ok", m.ok],
        ["failed", m.failed],
        ["dropped", m.dropped],
        ["skipped", m.skipped],
        ["unavailable", m.unavailable],
      ];
    }),
  },
  {
    name: "weft_config_info",
    type: "gauge",
    help: "1 for the routes' config version in force and where it came from (source and version both code for the routes in code); a new series per version applied.",
    *samples(snapshot) {
      for (const client of snapshot.clients) {
        const routing = routingOf(client);
        if (routing !== null) yield [{ service: client.service, source: routing.source, version: routing.version }, 1];
      }
    },
  },
  {
    name: "weft_config_rejected_total",
    type: "counter",
    help: "Config versions the dynamic config source published that failed validation (the last good kept serving); absent without a config source.",
    samples: perRoutedClient((r) => r.config?.rejected ?? null),
  },
  {
    name: "weft_config_stale",
    type: "gauge",
    help: "1 while the dynamic config source is failing (unreachable, unparsable document) and the version in force keeps serving; absent without a config source.",
    samples: perRoutedClient((r) => (r.config === null ? null : r.config.stale ? 1 : 0)),
  },
  // TLS: the certificates in use and what failed, per client (origination) and per server (termination).
  {
    name: "weft_tls_certificate_expiry_seconds",
    type: "gauge",
    help: "Seconds until the certificate in use expires (negative once it has); side is client or server. Alert well before 0.",
    *samples(snapshot) {
      for (const client of snapshot.clients) {
        const left = client.tls?.material.expiresInMs;
        if (left !== undefined) yield [{ service: client.service, side: "client" }, left / 1000];
      }
      for (const server of serversOf(snapshot)) {
        const left = server.tls?.material.expiresInMs;
        if (left !== undefined) yield [{ service: server.service, side: "server" }, left / 1000];
      }
    },
  },
  {
    name: "weft_tls_material_version",
    type: "gauge",
    help: "The version of the TLS material in use: 1 at start, +1 per rotation applied.",
    *samples(snapshot) {
      for (const client of snapshot.clients)
        if (client.tls !== null) yield [{ service: client.service, side: "client" }, client.tls.material.version];
      for (const server of serversOf(snapshot))
        if (server.tls !== null) yield [{ service: server.service, side: "server" }, server.tls.material.version];
    },
  },
  {
    name: "weft_tls_material_rejected_total",
    type: "counter",
    help: "Candidate TLS material refused (half-written, mismatched pair, expired); the last good kept serving.",
    *samples(snapshot) {
      for (const client of snapshot.clients)
        if (client.tls !== null) yield [{ service: client.service, side: "client" }, client.tls.material.rejected];
      for (const server of serversOf(snapshot))
        if (server.tls !== null) yield [{ service: server.service, side: "server" }, server.tls.material.rejected];
    },
  },
  {
    name: "weft_client_identity_failures_total",
    type: "counter",
    help: "TLS handshakes refused because the server's SPIFFE ID was not the one expected.",
    samples: perClient((c) => (c.tls === null ? null : c.tls.identityFailures)),
  },
  {
    name: "weft_tls_handshake_failures_total",
    type: "counter",
    help: "Failed TLS handshakes by reason (an OpenSSL / Node code: CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …).",
    *samples(snapshot) {
      for (const client of snapshot.clients)
        for (const [reason, n] of Object.entries(client.tls?.tlsFailures ?? {}))
          yield [{ service: client.service, side: "client", reason }, n];
      for (const server of serversOf(snapshot))
        for (const [reason, n] of Object.entries(server.tls?.handshakeFailures ?? {}))
          yield [{ service: server.service, side: "server", reason }, n];
    },
  },
  // Servers: the inbound side, one series set per `inbound({ service, mesh })`.
  {
    name: "weft_server_state",
    type: "gauge",
    help: "1 for the server's current state (serving, draining, closed), 0 for the others.",
    *samples(snapshot) {
      for (const server of serversOf(snapshot)) {
        for (const state of SERVER_STATES) yield [{ service: server.service, state }, server.state === state ? 1 : 0];
      }
    },
  },
  {
    name: "weft_server_inflight",
    type: "gauge",
    help: "Requests being handled now (admitted, not yet finished).",
    samples: perServer((s) => s.inflight),
  },
  {
    name: "weft_server_requests_total",
    type: "counter",
    help: "Requests that reached the server (health checks excluded), refused ones included.",
    samples: perServer((s) => s.counters.requests),
  },
  {
    name: "weft_server_errors_total",
    type: "counter",
    help: "Admitted requests the application answered with 5xx.",
    samples: perServer((s) => s.counters.errors),
  },
  {
    name: "weft_server_aborted_total",
    type: "counter",
    help: "Admitted requests whose caller went away before the response finished.",
    samples: perServer((s) => s.counters.aborted),
  },
  {
    name: "weft_server_deadline_expired_total",
    type: "counter",
    help: "Requests refused with 504: the caller's deadline had passed on arrival.",
    samples: perServer((s) => s.counters.expired),
  },
  {
    name: "weft_server_deadline_malformed_total",
    type: "counter",
    help: "Requests refused with 400: an unreadable deadline header.",
    samples: perServer((s) => s.counters.badDeadline),
  },
  {
    name: "weft_server_shed_total",
    type: "counter",
    help: "Requests admission control turned away (503), by priority class; absent when shedding is off.",
    samples: perServerKey("priority", PRIORITIES, (s) => s.admission?.shed ?? null),
  },
  {
    name: "weft_server_authz_total",
    type: "counter",
    help: "Authorization decisions (allow, deny, unauthenticated, malformed); absent when authz is off.",
    samples: perServerKey("decision", DECISIONS, (s) => s.authz),
  },
  {
    name: "weft_server_concurrency_limit",
    type: "gauge",
    help: "The admission limit now (fixed, or the adaptive controller's); absent when shedding is off.",
    samples: perServer((s) => s.admission?.limit),
  },
  {
    name: "weft_server_concurrency_adaptive",
    type: "gauge",
    help: "1 when the admission limit is adaptive, 0 when fixed; absent when shedding is off.",
    samples: perServer((s) => (s.admission === null ? null : s.admission.adaptive ? 1 : 0)),
  },
  {
    name: "weft_server_requests_per_second",
    type: "gauge",
    help: "Admitted requests finished per second over the recent window (10 s).",
    samples: perServer((s) => s.stats.window.requestsPerSecond),
  },
  {
    name: "weft_server_success_ratio",
    type: "gauge",
    help: "Admitted requests answered below 500 over those answered (0-1) in the recent window; absent with none.",
    samples: perServer((s) => (s.stats.window.successPercent === null ? null : s.stats.window.successPercent / 100)),
  },
  {
    name: "weft_server_latency_ms",
    type: "gauge",
    help: "Latency quantiles of admitted requests over the recent window, ms (histogram-estimated, within 12.5 %).",
    *samples(snapshot) {
      for (const server of serversOf(snapshot)) {
        const latency = server.stats.window.latencyMs;
        if (latency === null) continue;
        yield [{ service: server.service, quantile: "0.5" }, latency.p50];
        yield [{ service: server.service, quantile: "0.9" }, latency.p90];
        yield [{ service: server.service, quantile: "0.99" }, latency.p99];
      }
    },
  },
];

/**
 * Renders `snapshot` as Prometheus text: a HELP and a TYPE line per metric, then its samples.
 * @example res.setHeader("content-type", PROMETHEUS_CONTENT_TYPE).end(renderPrometheus(mesh.snapshot()))
 */
export function renderPrometheus(snapshot: MeshSnapshot): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const [labels, value] of family.samples(snapshot))
      lines.push(`${family.name}${formatLabels(labels)} ${formatValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

/** The names of the metrics `renderPrometheus` writes, in order. */
export const PROMETHEUS_METRICS: readonly string[] = FAMILIES.map((f) => f.name);

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** Label values: `\` → `\\`, `"` → `\"`, newline → `\n` (the exposition format's three escapes). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

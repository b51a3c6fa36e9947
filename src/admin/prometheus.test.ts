import { afterEach, describe, expect, it } from "vitest";
import { createMesh, staticDiscovery, type Mesh, type MeshSnapshot } from "../index.js";
import { escapeLabelValue, PROMETHEUS_METRICS, renderPrometheus } from "./prometheus.js";

let mesh: Mesh | undefined;
afterEach(async () => {
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
    for (const line of text.trimEnd().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) weft_\w+ .+|weft_\w+(\{.*\})? \S+)$/);
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
      snapshot((c) => ({ ...c, endpoints: c.endpoints.map((e, i) => (i === 0 ? { ...e, state: "ejected" as const, breaker: "halfOpen" as const } : e)) })),
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
});

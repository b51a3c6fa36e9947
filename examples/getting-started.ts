/**
 * The getting-started example, runnable: `npx tsx examples/getting-started.ts`.
 * It starts two small servers on loopback so it needs nothing else, then calls them through weft.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createMesh, isWeftError, staticDiscovery } from "weft";

async function startReplica(name: string, delayMs: number): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer((req, res) => {
    setTimeout(
      () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ replica: name, path: req.url }));
      },
      req.url === "/slow" ? 1000 : delayMs,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const replicas = [await startReplica("a", 1), await startReplica("b", 5)];

// A mesh shares defaults, resolvers and connection pools between its clients.
const mesh = createMesh({ defaults: { timeout: { attemptMs: 300, totalMs: 1000 } } });
const catalog = mesh.client("catalog", { discovery: staticDiscovery(replicas.map((r) => r.url)) });

catalog.events.onAttemptEnd((e) =>
  console.log(`  attempt → ${e.endpoint} ${e.status ?? e.outcome} in ${e.durationMs.toFixed(1)} ms`),
);
catalog.events.onRetry((e) =>
  console.log(`  retry #${e.attempt} after ${e.reason}, waiting ${e.delayMs.toFixed(1)} ms`),
);

// The fast path: status, headers and a body to read once.
const r = await catalog.request({ path: "/v1/items/42" });
console.log("request:", r.status, await r.json());

// WHATWG fetch semantics: a real Response with a streaming body.
const res = await catalog.fetch("/v1/items/43", {
  method: "PUT",
  body: JSON.stringify({ name: "lamp" }),
  headers: { "content-type": "application/json" },
});
console.log("fetch:", res.status, await res.json());

// Each attempt has 300 ms; a timed-out GET is retried (another replica first) within the budget,
// and when attempts run out the error says so, with the last failure as its cause.
try {
  await catalog.request({ path: "/slow" });
} catch (error) {
  if (isWeftError(error))
    console.log(
      "slow call:",
      error.code,
      `after ${error.attempts} attempt(s), last: ${(error.cause as { code?: string }).code}`,
    );
  else throw error;
}

console.log(
  "snapshot:",
  JSON.stringify(catalog.snapshot().endpoints.map((e) => ({ url: e.url, ewmaMs: e.ewmaMs, requests: e.requests }))),
);
await mesh.close();
for (const { server } of replicas) server.close();

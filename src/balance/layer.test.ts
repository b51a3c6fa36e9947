/** The balance layer inside a client: zone preference, resends to untried endpoints, panic. */
import { describe, expect, it } from "vitest";
import { createClient } from "../client/index.js";
import { seededRandom } from "../core/clock.js";
import type { MeshRequest } from "../core/types.js";
import { staticDiscovery } from "../discovery/static.js";
import { mockService } from "../testing/mock-service.js";
import { ringHash } from "./ring-hash.js";

const zoned = staticDiscovery([
  { url: "http://127.0.0.1:1", zone: "a" },
  { url: "http://127.0.0.1:2", zone: "a" },
  { url: "http://127.0.0.1:3", zone: "b" },
  { url: "http://127.0.0.1:4", zone: "b" },
]);

describe("balance layer", () => {
  it("keeps traffic in the caller's zone while it is healthy, and spills over when it is not", async () => {
    const seen: string[] = [];
    let zoneADown = false;
    const client = createClient({
      service: "s",
      discovery: zoned,
      random: seededRandom(5),
      zoneAware: { zone: "a" },
      retry: { backoff: { baseMs: 0, maxMs: 0 } },
      transport: mockService((req: MeshRequest) => {
        seen.push(req.endpoint?.url ?? "");
        const inA = req.endpoint?.port === 1 || req.endpoint?.port === 2;
        return { status: zoneADown && inA ? 503 : 200 };
      }),
    });
    for (let i = 0; i < 50; i++) await client.request({ path: "/" });
    // Every pick stayed in zone a (which of its two endpoints is the balancer's business).
    expect(seen.every((u) => u.endsWith(":1") || u.endsWith(":2"))).toBe(true);
    // Zone a fails: retries go to zone b, and once a's breakers open, first attempts do too.
    zoneADown = true;
    seen.length = 0;
    for (let i = 0; i < 50; i++) expect((await client.request({ path: "/" })).status).toBe(200);
    expect(seen.some((u) => u.endsWith(":3") || u.endsWith(":4"))).toBe(true);
    await client.close();
  });

  it("sends the same key to the same endpoint with ringHash", async () => {
    const seen = new Map<string, Set<string>>();
    const client = createClient({
      service: "s",
      discovery: zoned,
      balancer: ringHash({ key: (req) => req.headers["x-user"] as string | undefined }),
      transport: mockService((req) => {
        const user = req.headers["x-user"] as string;
        seen.set(user, (seen.get(user) ?? new Set()).add(req.endpoint?.url ?? ""));
        return { status: 200 };
      }),
    });
    for (let i = 0; i < 200; i++) await client.request({ path: "/", headers: { "x-user": `u${i % 20}` } });
    expect(seen.size).toBe(20);
    for (const endpoints of seen.values()) expect(endpoints.size).toBe(1);
    // The 20 users spread over more than one endpoint.
    expect(new Set([...seen.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
    await client.close();
  });
});

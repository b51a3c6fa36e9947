/**
 * Every decision is published on node:diagnostics_channel (`weft:*`), so a tool can watch every
 * client without touching its options.
 */
import diagnostics from "node:diagnostics_channel";
import { describe, expect, it } from "vitest";
import { CHANNELS, createClient, staticDiscovery } from "weft";
import { defer, scoped, server } from "../helpers/scope.js";

function listen(name: string): unknown[] {
  const seen: unknown[] = [];
  const onMessage = (message: unknown): void => {
    seen.push(message);
  };
  diagnostics.subscribe(name, onMessage);
  defer(async () => diagnostics.unsubscribe(name, onMessage));
  return seen;
}

describe("diagnostics_channel", () => {
  it("publishes attempts, retries and call ends as weft:* messages carrying the service", async () => {
    let calls = 0;
    const upstream = await server((_req, res) => {
      calls++;
      res.statusCode = calls === 1 ? 503 : 200;
      res.end();
    });
    const retries = listen(CHANNELS.retry);
    const attempts = listen(CHANNELS.attemptEnd);
    const ends = listen("weft:callEnd");
    const client = scoped(
      createClient({
        service: "watched",
        discovery: staticDiscovery([upstream.url]),
        retry: { backoff: { baseMs: 1, maxMs: 1 } },
      }),
    );
    const res = await client.request({ path: "/x" });
    expect(res.status).toBe(200);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ service: "watched", method: "GET", path: "/x" });
    expect(attempts.map((a) => (a as { status: number }).status)).toEqual([503, 200]);
    expect(ends).toEqual([
      expect.objectContaining({ service: "watched", status: 200, attempts: 2, outcome: "success" }),
    ]);
  });

  it("names a channel for every event and publishes endpoint-set changes", async () => {
    expect(Object.values(CHANNELS).every((name) => name.startsWith("weft:"))).toBe(true);
    expect(Object.keys(CHANNELS)).toEqual(
      expect.arrayContaining([
        "retry",
        "hedge",
        "breakerStateChange",
        "endpointHealth",
        "discoveryState",
        "budgetExhausted",
      ]),
    );
    const upstream = await server();
    const changes = listen(CHANNELS.endpointsChanged);
    scoped(createClient({ service: "set", discovery: staticDiscovery([upstream.url]) }));
    expect(changes).toEqual([expect.objectContaining({ service: "set", added: [upstream.url], removed: [] })]);
  });
});

/**
 * Dynamic config on a real file and real servers: a client with `configSource: fileConfig(…)`
 * applies each new version whole between calls, rejects an invalid one with a warning naming the
 * source, the version, the path in the document and the value while the last good version keeps
 * serving, and recovers on the next good one. (The etcd source and the CLI have their own tests.)
 */
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMesh, fileConfig, staticDiscovery, type ConfigEvent, type EndpointInfo } from "weft";
import { scoped, server } from "../helpers/scope.js";
import type { TestServer } from "../helpers/server.js";

const versioned = (s: TestServer, version: string): EndpointInfo => ({ url: s.url, metadata: { version } });

async function named(name: string, gate?: Promise<void>): Promise<TestServer> {
  return server(async (_req, res) => {
    if (gate !== undefined) await gate;
    res.end(name);
  });
}

/** Writes `document` as a new file renamed over the old one, as config tools do. */
function writeConfig(file: string, document: unknown): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, typeof document === "string" ? document : JSON.stringify(document));
  renameSync(tmp, file);
}

const toV2 = (percent: number): unknown => ({
  routes: [
    {
      name: "split",
      backends: [
        { subset: { version: "v1" }, weight: 100 - percent },
        { subset: { version: "v2" }, weight: percent },
      ],
    },
  ],
});

describe("dynamic config from a file", () => {
  it("applies each version whole, rejects an invalid one while the last good serves, and recovers on the next", async () => {
    const [v1, v2] = await Promise.all([named("v1"), named("v2")]);
    const dir = mkdtempSync(join(tmpdir(), "weft-config-"));
    const file = join(dir, "catalog.yaml");
    writeConfig(file, toV2(0));
    const warnings: string[] = [];
    const mesh = scoped(createMesh({ onWarning: (m) => warnings.push(m) }));
    const client = mesh.client("catalog", {
      discovery: staticDiscovery([versioned(v1, "v1"), versioned(v2, "v2")]),
      configSource: fileConfig(join(dir, "{service}.yaml"), { pollMs: 50, debounceMs: 5 }),
    });
    const events: ConfigEvent[] = [];
    client.events.onConfig((e) => events.push(e));
    const routing = (): NonNullable<ReturnType<typeof client.snapshot>["routing"]> => client.snapshot().routing!;
    await expect.poll(() => routing().version).toMatch(/^sha256:/);
    const first = routing().version;
    const answers = async (n: number): Promise<Set<string>> =>
      new Set(await Promise.all(Array.from({ length: n }, async () => (await client.request({ path: "/" })).text())));
    expect(await answers(20)).toEqual(new Set(["v1"]));

    writeConfig(file, toV2(100));
    await expect.poll(() => routing().version).not.toBe(first);
    const second = routing().version;
    expect(await answers(20)).toEqual(new Set(["v2"]));
    // The first version applied after the listener was there (the file is read asynchronously).
    expect(events.filter((e) => e.kind === "applied").map((e) => e.version)).toEqual([first, second]);

    // Invalid: a negative weight. Rejected with the source, the version, the path and the value.
    writeConfig(file, {
      routes: [{ name: "split", backends: [{ subset: { version: "v1" }, weight: -5 }, { subset: { version: "v2" } }] }],
    });
    await expect.poll(() => routing().config?.rejected).toBe(1);
    const rejection = warnings.find((w) => /rejected/.test(w))!;
    expect(rejection).toContain(`file:${file}`);
    expect(rejection).toMatch(
      /\(sha256:[0-9a-f]{12}\) for "catalog": rejected: invalid option routes\[0\]\.backends\[0\]\.weight: got -5; expected a number from 0/,
    );
    expect(rejection).toContain(`keeping ${second}`);
    expect(routing().version).toBe(second);
    expect(routing().config!.lastRejected).toMatchObject({ error: expect.stringMatching(/weight: got -5/) });
    expect(events.at(-1)).toMatchObject({ kind: "rejected", error: expect.stringMatching(/weight/) });
    // The last good version keeps serving.
    expect(await answers(20)).toEqual(new Set(["v2"]));

    // A document that does not parse: the source says so (stale), nothing applies.
    writeConfig(file, "routes: [ { name: split, backends: [ }");
    await expect.poll(() => routing().config?.stale).toBe(true);
    expect(routing().config!.lastError).toMatch(/does not parse.*line 1/);
    expect(routing().version).toBe(second);
    expect(await answers(10)).toEqual(new Set(["v2"]));

    // An unknown key: named, with the keys allowed.
    writeConfig(file, { routes: [], retyr: { maxAttempts: 3 } });
    await expect.poll(() => routing().config?.rejected).toBe(2);
    expect(warnings.at(-1)).toMatch(
      /unknown option retyr \(did you mean retry\?\); allowed: routes, timeout, retry, hedge/,
    );

    // The next good version applies, and the source is fresh again.
    writeConfig(file, toV2(0));
    await expect.poll(() => routing().version).not.toBe(second);
    expect(routing().config).toMatchObject({ stale: false, lastRejected: null });
    expect(await answers(20)).toEqual(new Set(["v1"]));

    // The same document again, in other words: a new version, taken as a new label — the routes
    // are not rebuilt, so their counts go on.
    const third = routing();
    writeConfig(file, "# reformatted\n" + JSON.stringify(toV2(0), null, 2));
    await expect.poll(() => routing().version).not.toBe(third.version);
    expect(routing().since).toBe(third.since);
    expect(routing().routes[0]!.calls).toBe(third.routes[0]!.calls);
    expect(events.at(-1)).toMatchObject({ kind: "applied", version: routing().version });
  });

  it("lets a call in flight keep the version it started with; the next call takes the new one", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const [v1, v2] = await Promise.all([named("v1", gate), named("v2")]);
    const dir = mkdtempSync(join(tmpdir(), "weft-config-"));
    const file = join(dir, "catalog.json");
    writeConfig(file, { timeout: { totalMs: 5000 }, ...(toV2(0) as object) });
    const mesh = scoped(createMesh({ onWarning: () => {} }));
    const client = mesh.client("catalog", {
      discovery: staticDiscovery([versioned(v1, "v1"), versioned(v2, "v2")]),
      configSource: fileConfig(file, { pollMs: 50, debounceMs: 5 }),
    });
    await expect.poll(() => client.snapshot().routing!.version).toMatch(/^sha256:/);
    const first = client.snapshot().routing!.version;
    const inFlight = client.request({ path: "/held" });
    await expect.poll(() => v1.received.length).toBe(1);
    // A new version that would send everything to v2, with a total deadline far below the held call's wait.
    writeConfig(file, { timeout: { totalMs: 50 }, ...(toV2(100) as object) });
    await expect.poll(() => client.snapshot().routing!.version).not.toBe(first);
    expect(await (await client.request({ path: "/after" })).text()).toBe("v2");
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    // It kept its version: v1, and its 5 s deadline (not the new 50 ms).
    expect(await (await inFlight).text()).toBe("v1");
  });

  it("lets a document's top level override a policy for every call, and a route's own value win over it", async () => {
    let n = 0;
    const backend = await server((_req, res) => {
      res.statusCode = n++ % 4 === 3 ? 200 : 503;
      res.end();
    });
    const dir = mkdtempSync(join(tmpdir(), "weft-config-"));
    const file = join(dir, "orders.yaml");
    writeConfig(
      file,
      ["retry:", "  maxAttempts: 4", "routes:", "  - match: { path: /once }", "    retry: { maxAttempts: 1 }", ""].join(
        "\n",
      ),
    );
    const mesh = scoped(createMesh({ onWarning: () => {} }));
    const client = mesh.client("orders", {
      discovery: staticDiscovery([backend.url]),
      retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 2 } },
      configSource: fileConfig(file, { pollMs: 50, debounceMs: 5 }),
    });
    await expect.poll(() => client.snapshot().routing!.version).toMatch(/^sha256:/);
    // Top level: 4 attempts (over the client's 2), the client's backoff kept (merged, not replaced).
    n = 0;
    expect((await client.request({ path: "/any" })).status).toBe(200);
    expect(backend.received.filter((r) => r.url === "/any")).toHaveLength(4);
    // The route's own value wins over the top level.
    n = 0;
    expect((await client.request({ path: "/once" })).status).toBe(503);
    expect(backend.received.filter((r) => r.url === "/once")).toHaveLength(1);
  });
});

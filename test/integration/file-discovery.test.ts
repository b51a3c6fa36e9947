/**
 * fileDiscovery against real files and real HTTP servers: watched rewrites, atomic renames,
 * half-written files, bad entries, a missing file — the last good set keeps serving throughout.
 */
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMesh, fileDiscovery, staticDiscovery, type Client, type Discovery, type EndpointInfo } from "weft";
import type { DiscoveryStateEvent } from "../../src/core/events.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "weft-file-"));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the whole file under a temporary name, then renames it over the target (atomic). */
async function replace(path: string, content: unknown): Promise<void> {
  const temp = `${path}.tmp-${process.hrtime.bigint()}`;
  await writeFile(temp, typeof content === "string" ? content : JSON.stringify(content));
  await rename(temp, path);
}

function meshWithWarnings() {
  const warnings: string[] = [];
  const mesh = scoped(createMesh({ onWarning: (m) => warnings.push(m) }));
  return { mesh, warnings };
}

function urls(client: Client): string[] {
  return client
    .snapshot()
    .endpoints.map((e) => e.url)
    .sort();
}

describe("fileDiscovery", () => {
  it("serves the endpoints of a JSON file, and the first call waits for the first read", async () => {
    const [a, b] = [await server(), await server()];
    const dir = await tempDir();
    const path = join(dir, "catalog.json");
    await replace(path, [a.url, { url: b.url, weight: 2, zone: "z1", metadata: { version: "2" } }]);
    const { mesh } = meshWithWarnings();
    const client = mesh.client("catalog", { discovery: fileDiscovery(path), retry: false });
    // No endpoint is known yet (the read is asynchronous): the call waits for it.
    expect(client.snapshot().endpoints).toEqual([]);
    const responses = await Promise.all(Array.from({ length: 12 }, () => client.request({ path: "/" })));
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(a.received.length + b.received.length).toBe(12);
    const endpoint = client.snapshot().endpoints.find((e) => e.url === b.url);
    expect(endpoint).toMatchObject({ weight: 2, zone: "z1" });
    expect(client.snapshot().discovery).toMatchObject({ source: `file:${path}`, stale: false });
  });

  it("follows rewrites and atomic renames; a removed endpoint drains its in-flight call", async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = await server(async (_req, res) => {
      await held;
      res.end("slow-done");
    });
    const fresh = await server();
    const dir = await tempDir();
    const path = join(dir, "svc.json");
    await replace(path, [slow.url]);
    const { mesh } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: fileDiscovery(path, { pollMs: 60_000 }), retry: false });
    const inflight = client.request({ path: "/held" });
    await until(() => slow.received.length === 1, "the held call to reach its server");

    await replace(path, { endpoints: [fresh.url] });
    await until(() => urls(client).join() === fresh.url, "the rename to be seen");
    const after = await client.request({ path: "/" });
    expect(await after.text()).toBe("ok");
    expect(fresh.received).toHaveLength(1);

    release();
    const drained = await inflight;
    expect(await drained.text()).toBe("slow-done");

    // An in-place write (not a rename) is seen too.
    await writeFile(path, JSON.stringify([fresh.url, slow.url]));
    await until(() => urls(client).length === 2, "the in-place write to be seen");
  });

  it("keeps the last good set through a half-written file, and warns naming the source", async () => {
    const a = await server();
    const dir = await tempDir();
    const path = join(dir, "svc.json");
    await replace(path, [a.url]);
    const { mesh, warnings } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: fileDiscovery(path, { pollMs: 60_000 }), retry: false });
    const states: DiscoveryStateEvent[] = [];
    client.events.onDiscoveryState((e) => states.push(e));
    await client.request({ path: "/" });

    await writeFile(path, `[${JSON.stringify(a.url)}, {"url": "http://127.0`);
    await until(() => client.snapshot().discovery.stale, "the broken write to be noticed");
    expect(
      warnings.some(
        (w) => w.includes(`file:${path}`) && w.includes("invalid JSON") && w.includes("keeping the last good set of 1"),
      ),
    ).toBe(true);
    expect(urls(client)).toEqual([a.url]);
    expect((await client.request({ path: "/" })).status).toBe(200);
    expect(states.at(-1)).toMatchObject({ service: "svc", stale: true, endpoints: 1 });

    await writeFile(path, JSON.stringify([a.url]));
    await until(() => !client.snapshot().discovery.stale, "the repaired file to be read");
    expect(states.at(-1)).toMatchObject({ stale: false, lastError: undefined });
  });

  it("rejects a bad entry with a warning naming it while the others serve", async () => {
    const a = await server();
    const dir = await tempDir();
    const path = join(dir, "svc.json");
    await replace(path, [a.url, "ftp://127.0.0.1:21", { url: "http://127.0.0.1:9", weight: -1 }]);
    const { mesh, warnings } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: fileDiscovery(path), retry: false });
    expect((await client.request({ path: "/" })).status).toBe(200);
    expect(urls(client)).toEqual([a.url]);
    expect(
      warnings.some(
        (w) =>
          w.includes("rejected endpoints[1]") &&
          w.includes("ftp://127.0.0.1:21") &&
          w.includes("allowed: http:, https:"),
      ),
    ).toBe(true);
    expect(
      warnings.some((w) => w.includes("rejected endpoints[2]") && w.includes("weight must be a positive number")),
    ).toBe(true);
  });

  it("a missing file fails calls with no endpoints until it appears", async () => {
    const a = await server();
    const dir = await tempDir();
    const path = join(dir, "later.json");
    const { mesh, warnings } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: fileDiscovery(path, { pollMs: 50 }), retry: false });
    await expect(client.request({ path: "/" })).rejects.toMatchObject({ code: "WEFT_ERR_NO_ENDPOINTS" });
    expect(client.snapshot().discovery).toMatchObject({ stale: true, lastError: expect.stringContaining("ENOENT") });
    expect(warnings.some((w) => w.includes("ENOENT") && w.includes("no endpoints yet"))).toBe(true);
    await replace(path, [a.url]);
    await until(() => urls(client).length === 1, "the new file to be read");
    expect((await client.request({ path: "/" })).status).toBe(200);
  });

  it("shares one resolver between the clients of a mesh", async () => {
    const a = await server();
    const dir = await tempDir();
    const path = join(dir, "svc.json");
    await replace(path, [a.url]);
    const { mesh } = meshWithWarnings();
    const one = mesh.client("one", { discovery: fileDiscovery(path) });
    const two = mesh.client("two", { discovery: fileDiscovery(path) });
    await Promise.all([one.request({ path: "/" }), two.request({ path: "/" })]);
    await replace(path, [a.url, "http://127.0.0.1:9"]);
    await until(() => urls(one).length === 2 && urls(two).length === 2, "both clients to see the change");
  });

  it("fails at construction on bad options, naming them", () => {
    expect(() => fileDiscovery("")).toThrow(/fileDiscovery path.*non-empty file path/);
    expect(() => fileDiscovery("/x.json", { pollMs: 0 })).toThrow(/fileDiscovery\.pollMs.*positive number/);
    expect(() => fileDiscovery("/x.json", { pollEveryMs: 5 } as never)).toThrow(
      /unknown option fileDiscovery\.pollEveryMs/,
    );
  });
});

/** A source that has not answered yet (a DNS query or an etcd list still in flight). */
function silentDiscovery(): Discovery & { answer(endpoints: readonly EndpointInfo[]): void } {
  let listener: ((endpoints: readonly EndpointInfo[]) => void) | undefined;
  return {
    key: `silent:${Math.random()}`,
    create: () => ({
      subscribe: (l) => {
        listener = l;
        return () => {};
      },
      snapshot: () => ({ source: "silent", endpoints: [], updatedAt: undefined, stale: false, lastError: undefined }),
      close: async () => {},
    }),
    answer: (endpoints) => listener?.(endpoints),
  };
}

describe("before discovery's first answer", () => {
  it("a call waits for the answer and then goes out", async () => {
    const a = await server();
    const discovery = silentDiscovery();
    const { mesh } = meshWithWarnings();
    const client = mesh.client("svc", { discovery });
    const pending = client.request({ path: "/" });
    discovery.answer([{ url: a.url }]);
    expect((await pending).status).toBe(200);
  });

  it("a waiting call ends at its deadline", async () => {
    const { mesh } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: silentDiscovery(), timeout: { totalMs: 50 } });
    await expect(client.request({ path: "/" })).rejects.toMatchObject({ code: "WEFT_ERR_TOTAL_TIMEOUT" });
  });

  it("a waiting call fails as closed when its client closes", async () => {
    const { mesh } = meshWithWarnings();
    const client = mesh.client("svc", { discovery: silentDiscovery() });
    const pending = client.request({ path: "/" });
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: "WEFT_ERR_CLIENT_CLOSED" });
  });
});

describe("shared connection pools", () => {
  it("an endpoint leaving one client's set does not close the pool another client of the mesh still uses", async () => {
    const ports: number[] = [];
    const gateway = await server((req, res) => {
      ports.push(req.socket.remotePort ?? 0);
      res.end("ok");
    });
    const dir = await tempDir();
    const path = join(dir, "a.json");
    await replace(path, [gateway.url]);
    const { mesh } = meshWithWarnings();
    // Two services behind one gateway origin: one pool in the mesh's transport.
    const a = mesh.client("a", { discovery: fileDiscovery(path, { pollMs: 60_000 }), retry: false });
    const b = mesh.client("b", { discovery: staticDiscovery([gateway.url]), retry: false });
    await (await a.request({ path: "/" })).text();
    await (await b.request({ path: "/" })).text();
    const before = new Set(ports);
    await replace(path, ["http://127.0.0.1:9"]);
    await until(() => urls(a).join() === "http://127.0.0.1:9", "a's endpoint to move");
    await (await b.request({ path: "/" })).text();
    // b kept the pool's keep-alive connections: no new connection (a closed pool would open one).
    expect(before.has(ports.at(-1) ?? 0)).toBe(true);
  });
});

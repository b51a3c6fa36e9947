/**
 * etcd discovery and registration against a real etcd (Debian `etcd-server`) on loopback ports:
 * list + watch, rejected values, register / deregister, lease expiry after a SIGKILL, etcd
 * killed, frozen and restarted, watch compaction, and a client calling what it discovered.
 */
import { fork } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "weft";
import { faultProxy } from "weft/testing";
import { systemClock } from "../../src/core/clock.js";
import type { EndpointInfo } from "../../src/core/endpoint.js";
import { etcdDiscovery, type EtcdDiscoveryOptions } from "../../src/discovery/etcd.js";
import { EtcdClient } from "../../src/etcd/client.js";
import { etcdRegistration } from "../../src/discovery/etcd-registration.js";
import { hasEtcd, startEtcd, type TestEtcd } from "../helpers/etcd.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { refusedPort } from "../helpers/server.js";
import { until } from "../helpers/until.js";

const value = (url: string, extra: Partial<EndpointInfo> = {}): string => JSON.stringify({ url, ...extra });
let prefixes = 0;
const freshPrefix = (): string => `/weft-test/${process.pid}-${++prefixes}/`;

/** A resolver on `prefix`, closed after the test; `urls()` is the last set it published, sorted. */
function discover(hosts: string[], prefix: string, options: Partial<EtcdDiscoveryOptions> = {}) {
  const warnings: string[] = [];
  const sets: string[][] = [];
  const resolver = scoped(
    etcdDiscovery({ hosts, prefix, backoff: { baseMs: 50, maxMs: 300 }, ...options }).create({
      clock: systemClock,
      random: Math.random,
      warn: (m) => warnings.push(m),
    }),
  );
  resolver.subscribe((set) => sets.push(set.map((e) => e.url).sort()));
  return { resolver, warnings, sets, urls: (): string[] => sets.at(-1) ?? [] };
}

const same = (a: string[], b: string[]): boolean => JSON.stringify(a) === JSON.stringify([...b].sort());

describe.skipIf(!hasEtcd)("etcd discovery (one etcd for the suite)", () => {
  let etcd: TestEtcd;
  let kv: EtcdClient;
  beforeAll(async () => {
    etcd = await startEtcd();
    kv = new EtcdClient({ hosts: [etcd.url] });
  });
  afterAll(async () => {
    await kv?.close();
    await etcd?.close();
  });

  it("lists the keys already there, then sees a put and a delete", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}a`, value("http://127.0.0.1:8081", { weight: 2, zone: "z1", metadata: { v: "1" } }));
    await kv.put(`${prefix}b`, value("http://127.0.0.1:8082"));
    await kv.put(`${prefix.slice(0, -1)}-other/c`, value("http://127.0.0.1:8089")); // outside the prefix
    const d = discover([etcd.url], prefix);
    await until(() => same(d.urls(), ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]), "the listing", 5000);
    expect(d.resolver.snapshot().endpoints.find((e) => e.url.endsWith("8081"))).toEqual({
      url: "http://127.0.0.1:8081",
      weight: 2,
      zone: "z1",
      metadata: { v: "1" },
    });
    await kv.put(`${prefix}c`, value("http://127.0.0.1:8083"));
    await until(() => d.urls().includes("http://127.0.0.1:8083"), "the put", 5000);
    await kv.delete(`${prefix}a`);
    await until(() => same(d.urls(), ["http://127.0.0.1:8082", "http://127.0.0.1:8083"]), "the delete", 5000);
    expect(d.resolver.snapshot()).toMatchObject({ stale: false, lastError: undefined });
    expect(d.warnings).toEqual([]);
  });

  it("rejects a bad JSON value and a bad url with a warning naming the key and value; the good keys keep serving", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}good`, value("http://127.0.0.1:8081"));
    await kv.put(`${prefix}broken`, "{not json");
    await kv.put(`${prefix}ftp`, value("ftp://127.0.0.1:21"));
    const d = discover([etcd.url], prefix);
    await until(() => d.warnings.length >= 2 && d.sets.length > 0, "two warnings", 5000);
    expect(d.urls()).toEqual(["http://127.0.0.1:8081"]);
    expect(d.warnings.find((w) => w.includes(`key ${prefix}broken`))).toMatch(
      /rejected key .*broken value "\{not json": not JSON/,
    );
    expect(d.warnings.find((w) => w.includes(`key ${prefix}ftp`))).toMatch(/ftp:\/\/127\.0\.0\.1:21.*protocol ftp:/);
    // A bad value arriving through the watch is rejected the same way; fixing a key brings it in.
    await kv.put(`${prefix}weight`, value("http://127.0.0.1:8084", { weight: -1 }));
    await kv.put(`${prefix}broken`, value("http://127.0.0.1:8082"));
    await until(() => same(d.urls(), ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]), "the fixed key", 5000);
    expect(d.warnings.find((w) => w.includes(`key ${prefix}weight`))).toMatch(/weight must be a positive number/);
    expect(d.resolver.snapshot().stale).toBe(false);
    // A truncated write over a live key keeps that key's last good endpoint: the instance is not drained.
    await kv.put(`${prefix}broken`, `{"url": "http://127.0.0.1:80`);
    await until(
      () => d.warnings.some((w) => w.includes("keeps its last good endpoint http://127.0.0.1:8082")),
      "the truncated write's warning",
      5000,
    );
    expect(d.urls()).toEqual(["http://127.0.0.1:8081", "http://127.0.0.1:8082"]);
    // Only a delete removes it.
    await kv.delete(`${prefix}broken`);
    await until(() => same(d.urls(), ["http://127.0.0.1:8081"]), "the delete", 5000);
  });

  it("tries the next host when the first refuses connections", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}a`, value("http://127.0.0.1:8081"));
    const d = discover([`http://127.0.0.1:${await refusedPort()}`, etcd.url], prefix);
    await until(() => d.urls().length === 1, "the listing through the second host", 5000);
    await kv.put(`${prefix}b`, value("http://127.0.0.1:8082"));
    await until(() => d.urls().length === 2, "the watch through the second host", 5000);
  });

  it("registers with etcdRegistration, and close() deregisters at once (no TTL wait)", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}static`, value("http://127.0.0.1:8081"));
    const d = discover([etcd.url], prefix);
    const registration = await etcdRegistration({
      hosts: [etcd.url],
      prefix,
      url: "http://127.0.0.1:9003",
      ttlSeconds: 30,
      zone: "a",
      metadata: { version: "2" },
    });
    defer(() => registration.close());
    expect(registration.key).toBe(`${prefix}127.0.0.1%3A9003`);
    await until(() => d.urls().includes("http://127.0.0.1:9003"), "the registration", 5000);
    expect(d.resolver.snapshot().endpoints.find((e) => e.url.endsWith("9003"))).toEqual({
      url: "http://127.0.0.1:9003",
      zone: "a",
      metadata: { version: "2" },
    });
    await registration.close();
    // Well inside the 30 s TTL: the revoke removed the key.
    await until(() => same(d.urls(), ["http://127.0.0.1:8081"]), "the deregistration", 2000);
    expect((await kv.rangePrefix(prefix)).kvs.map((k) => k.key)).toEqual([`${prefix}static`]);
  });

  it("removes a SIGKILLed instance when its lease expires", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}static`, value("http://127.0.0.1:8081"));
    const d = discover([etcd.url], prefix);
    const child = fork("test/fixtures/etcd-register.ts", [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        ETCD_HOSTS: etcd.url,
        ETCD_PREFIX: prefix,
        REGISTER_URL: "http://127.0.0.1:9004",
        TTL_SECONDS: "1",
      },
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    defer(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    });
    const reply = await new Promise<{ key?: string; error?: string }>((resolve, reject) => {
      child.once("message", (m: { key?: string; error?: string }) => resolve(m));
      child.once("exit", (code) => reject(new Error(`the registering child exited early (${code})`)));
    });
    expect(reply.error).toBeUndefined();
    await until(() => d.urls().includes("http://127.0.0.1:9004"), "the child's registration", 5000);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const gone = await until(() => same(d.urls(), ["http://127.0.0.1:8081"]), "the lease to expire", 8000);
    expect(gone).toBeGreaterThan(100); // it outlived its process: the lease, not a close(), removed it
  });

  it("re-lists after a watch is cancelled for compaction, and ends with the right set", async () => {
    const prefix = freshPrefix();
    await kv.put(`${prefix}a`, value("http://127.0.0.1:8081"));
    await kv.put(`${prefix}b`, value("http://127.0.0.1:8082"));
    // Every answer to the resolver is held 1.5 s: its listing (taken now) arrives after we have
    // changed the prefix and compacted past it, so the watch from listing + 1 gets cancelled.
    const proxy = scoped(await faultProxy({ target: etcd.url, fault: { kind: "latency", latencyMs: 1500 } }));
    const ranges = async (): Promise<number> => {
      const text = await (await fetch(`${etcd.url}/metrics`)).text();
      return Number(
        /grpc_server_handled_total\{grpc_code="OK",grpc_method="Range",[^}]*\} (\d+)/.exec(text)?.[1] ?? Number.NaN,
      );
    };
    const before = await ranges();
    const d = discover([proxy.url], prefix, { probeIntervalMs: 60_000 });
    await until(async () => (await ranges()) > before, "etcd to answer the listing", 5000);
    await kv.put(`${prefix}c`, value("http://127.0.0.1:8083"));
    for (let i = 0; i < 5; i++) await kv.put(`${prefix}c`, value("http://127.0.0.1:8083", { weight: i + 1 }));
    const revision = await kv.delete(`${prefix}a`).then(() => kv.put(`${prefix}d`, value("http://127.0.0.1:8084")));
    await kv.compact(revision);
    await proxy.clearFault();
    await until(
      () => same(d.urls(), ["http://127.0.0.1:8082", "http://127.0.0.1:8083", "http://127.0.0.1:8084"]),
      "the set after the re-list",
      8000,
    );
    expect(d.sets[0]).toEqual(["http://127.0.0.1:8081", "http://127.0.0.1:8082"]); // the old listing came first
    expect(await ranges()).toBeGreaterThanOrEqual(before + 2); // and a second listing followed
    expect(d.warnings).toEqual([]); // a compaction is routine, not a failure
    expect(d.resolver.snapshot().stale).toBe(false);
  });

  it("reports a watch started from a compacted revision as cancelled, with the compact revision", async () => {
    const prefix = freshPrefix();
    const first = await kv.put(`${prefix}a`, value("http://127.0.0.1:8081"));
    const last = await kv.put(`${prefix}a`, value("http://127.0.0.1:8082"));
    await kv.compact(last);
    const cancelled = await new Promise<number | undefined>((resolve, reject) => {
      const watch = kv.watch(prefix, first, {
        onEvents: () => reject(new Error("events from a compacted revision")),
        onCanceled: (rev) => resolve(rev),
        onClose: reject,
      });
      defer(async () => watch.close());
    });
    expect(cancelled).toBe(last);
  });

  it("feeds a real client: calls reach the instance registered in etcd", async () => {
    const prefix = freshPrefix();
    const upstream = await server((_req, res) => res.end("hello from etcd"));
    const registration = scoped(await etcdRegistration({ hosts: [etcd.url], prefix, url: upstream.url }));
    const client = scoped(createClient({ service: "x", discovery: etcdDiscovery({ hosts: [etcd.url], prefix }) }));
    let body = "";
    await until(
      async () => {
        const res = await client.request({ method: "GET", path: "/" }).catch(() => undefined);
        body = res === undefined ? "" : await res.text();
        return body === "hello from etcd";
      },
      "a call through etcd discovery",
      5000,
    );
    expect(registration.url).toBe(upstream.url);
  });
});

describe.skipIf(!hasEtcd)("etcd failures (an etcd per test)", () => {
  it("keeps the last set while etcd is SIGKILLed (stale), and takes updates again after a restart", async () => {
    const etcd = scoped(await startEtcd());
    const kv = scoped(new EtcdClient({ hosts: [etcd.url], requestTimeoutMs: 1000 }));
    const prefix = freshPrefix();
    await kv.put(`${prefix}a`, value("http://127.0.0.1:8081"));
    await kv.put(`${prefix}b`, value("http://127.0.0.1:8082"));
    // No probe during the test: the reset connection alone must reveal the dead stream.
    const d = discover([etcd.url], prefix, { probeIntervalMs: 60_000, requestTimeoutMs: 1000 });
    await until(() => d.urls().length === 2, "the listing", 5000);
    await etcd.kill();
    await until(() => d.resolver.snapshot().stale, "the resolver to turn stale", 3000);
    expect(d.urls()).toEqual(["http://127.0.0.1:8081", "http://127.0.0.1:8082"]);
    expect(d.resolver.snapshot().endpoints).toHaveLength(2);
    expect(d.warnings.join("\n")).toMatch(/watch stream|unreachable/);
    await etcd.restart();
    await kv.put(`${prefix}c`, value("http://127.0.0.1:8083"));
    await until(() => d.urls().length === 3, "the put after the restart", 8000);
    expect(d.resolver.snapshot().stale).toBe(false);
  });

  it("notices a frozen etcd (SIGSTOP) through its probe, and recovers on SIGCONT", async () => {
    const etcd = scoped(await startEtcd());
    defer(async () => void process.kill(etcd.pid, "SIGCONT"));
    const kv = scoped(new EtcdClient({ hosts: [etcd.url] }));
    const prefix = freshPrefix();
    await kv.put(`${prefix}a`, value("http://127.0.0.1:8081"));
    const d = discover([etcd.url], prefix, { probeIntervalMs: 200, requestTimeoutMs: 500 });
    await until(() => d.urls().length === 1, "the listing", 5000);
    process.kill(etcd.pid, "SIGSTOP");
    await until(() => d.resolver.snapshot().stale, "the probe to fail", 4000);
    expect(d.urls()).toEqual(["http://127.0.0.1:8081"]);
    expect(d.resolver.snapshot().lastError).toMatch(/probe failed|timed out/);
    process.kill(etcd.pid, "SIGCONT");
    await kv.put(`${prefix}b`, value("http://127.0.0.1:8082"));
    await until(() => d.urls().length === 2 && !d.resolver.snapshot().stale, "the resolver to recover", 8000);
  });

  it("keeps a registration through an etcd restart, and registers again when its lease is lost", async () => {
    const etcd = scoped(await startEtcd());
    const kv = scoped(new EtcdClient({ hosts: [etcd.url], requestTimeoutMs: 1000 }));
    const prefix = freshPrefix();
    const warnings: string[] = [];
    const registration = scoped(
      await etcdRegistration({
        hosts: [etcd.url],
        prefix,
        url: "http://127.0.0.1:9005",
        ttlSeconds: 1,
        requestTimeoutMs: 500,
        onWarning: (m) => warnings.push(m),
      }),
    );
    const leaseOf = async (): Promise<string | undefined> =>
      (await kv.rangePrefix(prefix).catch(() => ({ kvs: [] }))).kvs.find((k) => k.key === registration.key)?.lease;
    const firstLease = await leaseOf();
    expect(firstLease).toBeDefined();
    await etcd.kill();
    await until(() => warnings.some((w) => /could not keep .* registered/.test(w)), "the keep-alive to fail", 4000);
    await etcd.restart();
    await until(
      async () => (await leaseOf()) !== undefined && warnings.some((w) => /answers again/.test(w)),
      "the key after the restart",
      6000,
    );
    // The lease revoked behind its back (as if it expired): the next keep-alive registers again.
    const lease = (await leaseOf()) as string;
    await kv.leaseRevoke(lease);
    await until(
      async () => {
        const now = await leaseOf();
        return now !== undefined && now !== lease;
      },
      "a new lease",
      4000,
    );
    expect(warnings.some((w) => /lease of .* is gone/.test(w))).toBe(true);
  });

  it("rejects the first registration when etcd cannot be reached, naming the hosts", async () => {
    const host = `http://127.0.0.1:${await refusedPort()}`;
    await expect(
      etcdRegistration({ hosts: [host], prefix: "/p/", url: "http://127.0.0.1:9006", requestTimeoutMs: 500 }),
    ).rejects.toThrow(
      new RegExp(`could not register http://127.0.0.1:9006 as /p/127.0.0.1%3A9006 at ${host}.*ECONNREFUSED`),
    );
  });
});

/**
 * DNS discovery against a real dnsmasq on a loopback port: A/AAAA and SRV answers become
 * endpoints, record changes (hosts file + SIGHUP, SRV by restart) change the set, and a failing
 * name or a dead server keeps the last good set, stale, until DNS answers again.
 */
import dgram from "node:dgram";
import { describe, expect, it } from "vitest";
import { createClient, roundRobin } from "weft";
import { systemClock } from "../../src/core/clock.js";
import type { Discovery, Resolver } from "../../src/core/discovery.js";
import type { EndpointInfo } from "../../src/core/endpoint.js";
import { dnsDiscovery, type DnsDiscoveryOptions } from "../../src/discovery/dns.js";
import { DNSMASQ_INSTALL, hasDnsmasq, startDnsmasq, type Dnsmasq, type DnsmasqOptions } from "../helpers/dnsmasq.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

// Locally a missing dnsmasq skips (saying so); in CI startDnsmasq fails with the install command.
const skip = !hasDnsmasq && !process.env.CI;
if (skip) console.warn(`skipping DNS discovery tests: dnsmasq not found (${DNSMASQ_INSTALL})`);

/** Polls `predicate` every 20 ms; fails naming `what` after `timeoutMs`. */
async function dnsmasq(options: DnsmasqOptions): Promise<Dnsmasq> {
  return scoped(await startDnsmasq({ ttl: 1, ...options }));
}

interface Watched {
  readonly resolver: Resolver;
  readonly warnings: string[];
  latest(): readonly EndpointInfo[] | undefined;
  urls(): string[];
}

/** Creates the resolver like a mesh would, subscribes, and closes it after the test. */
function watch(discovery: Discovery): Watched {
  const warnings: string[] = [];
  const resolver = discovery.create({ clock: systemClock, random: Math.random, warn: (m) => warnings.push(m) });
  defer(() => resolver.close());
  let latest: readonly EndpointInfo[] | undefined;
  resolver.subscribe((set) => (latest = set));
  return { resolver, warnings, latest: () => latest, urls: () => (latest ?? []).map((e) => e.url).sort() };
}

/** Test tuning: fast refresh and retry, short query timeouts, so every wait stays bounded. */
function discover(dns: Dnsmasq, options: DnsDiscoveryOptions): Discovery {
  return dnsDiscovery({
    servers: [dns.server],
    minRefreshMs: 200,
    timeoutMs: 500,
    tries: 1,
    backoff: { baseMs: 100, maxMs: 500 },
    ...options,
  });
}

describe.skipIf(skip)("dnsDiscovery against dnsmasq", () => {
  it("turns A records into endpoints on the given port, and follows a record change after the TTL", async () => {
    const dns = await dnsmasq({ hosts: "127.0.0.2 a.test\n127.0.0.3 a.test\n127.0.0.9 b.test\n" });
    const { resolver, urls } = watch(discover(dns, { name: "a.test", port: 8080 }));
    const other = watch(discover(dns, { name: "b.test", port: 9090 }));
    await until(() => urls().length === 2 && other.urls().length === 1, "the first answers");
    expect(urls()).toEqual(["http://127.0.0.2:8080", "http://127.0.0.3:8080"]);
    expect(other.urls()).toEqual(["http://127.0.0.9:9090"]);
    expect(resolver.snapshot()).toMatchObject({ stale: false, lastError: undefined });

    await dns.setHosts("127.0.0.3 a.test\n127.0.0.4 a.test\n127.0.0.5 a.test\n");
    await until(
      () => urls().join() === "http://127.0.0.3:8080,http://127.0.0.4:8080,http://127.0.0.5:8080",
      "the changed records",
    );
  });

  it("turns SRV records into weighted endpoints of the lowest priority, with the SRV ports", async () => {
    const dns = await dnsmasq({
      hosts: "127.0.0.2 r1.test\n127.0.0.3 r2.test\n127.0.0.4 r3.test\n",
      srv: [
        "_http._tcp.s.test,r1.test,8081,10,60",
        "_http._tcp.s.test,r2.test,8082,10,20",
        "_http._tcp.s.test,r3.test,8083,20,100",
      ],
    });
    const { latest, urls } = watch(discover(dns, { name: "_http._tcp.s.test", type: "SRV" }));
    await until(() => urls().length > 0, "the first answer");
    expect([...(latest() ?? [])].sort((a, b) => a.url.localeCompare(b.url))).toEqual([
      { url: "http://127.0.0.2:8081", weight: 60, metadata: { target: "r1.test", priority: "10", srvWeight: "60" } },
      { url: "http://127.0.0.3:8082", weight: 20, metadata: { target: "r2.test", priority: "10", srvWeight: "20" } },
    ]);

    // When no target of the preferred priority resolves, the backup priority serves.
    await dns.setHosts("127.0.0.4 r3.test\n");
    await until(() => urls().join() === "http://127.0.0.4:8083", "the backup priority");

    // SRV records change by restarting dnsmasq on the same port (SIGHUP does not re-read them).
    await dns.setHosts("127.0.0.2 r1.test\n127.0.0.3 r2.test\n127.0.0.4 r3.test\n");
    await dns.setSrv(["_http._tcp.s.test,r2.test,9092,5,1"]);
    await until(() => urls().join() === "http://127.0.0.3:9092", "the new SRV record");
  });

  it("turns AAAA records into bracketed IPv6 endpoints", async () => {
    const dns = await dnsmasq({ hosts: "::1 six.test\n" });
    const { urls } = watch(discover(dns, { name: "six.test", type: "AAAA", port: 8443, protocol: "https" }));
    await until(() => urls().length > 0, "the first answer");
    expect(urls()).toEqual(["https://[::1]:8443"]);
  });

  it("keeps the last good set, stale, while a name stops resolving, and turns fresh when it is back", async () => {
    const dns = await dnsmasq({ hosts: "127.0.0.2 a.test\n127.0.0.3 a.test\n" });
    const { resolver, warnings, urls } = watch(discover(dns, { name: "a.test", port: 8080 }));
    await until(() => urls().length === 2, "the first answer");

    await dns.setHosts("127.0.0.9 other.test\n");
    await until(() => resolver.snapshot().stale, "the failure to be noticed");
    expect(urls()).toEqual(["http://127.0.0.2:8080", "http://127.0.0.3:8080"]);
    expect(resolver.snapshot().lastError).toMatch(/ENOTFOUND/);
    expect(
      warnings.some(
        (w) =>
          w.includes(`dns:A a.test @${dns.server}`) &&
          w.includes("ENOTFOUND") &&
          w.includes("keeping the last good set of 2"),
      ),
    ).toBe(true);

    await dns.setHosts("127.0.0.2 a.test\n");
    await until(() => !resolver.snapshot().stale, "the name to resolve again");
    expect(resolver.snapshot().lastError).toBeUndefined();
    expect(urls()).toEqual(["http://127.0.0.2:8080"]);
  });

  it("keeps the last good set while dnsmasq is down, and refreshes again once it is back on its port", async () => {
    const dns = await dnsmasq({ hosts: "127.0.0.2 a.test\n" });
    const { resolver, warnings, urls } = watch(discover(dns, { name: "a.test", port: 8080 }));
    await until(() => urls().length === 1, "the first answer");

    await dns.kill();
    await until(() => resolver.snapshot().stale, "the dead server to be noticed");
    expect(urls()).toEqual(["http://127.0.0.2:8080"]);
    expect(resolver.snapshot().lastError).toMatch(/ECONNREFUSED/);
    expect(warnings.length).toBeGreaterThan(0);

    await dns.setHosts("127.0.0.2 a.test\n127.0.0.3 a.test\n"); // read by the restart
    await dns.restart();
    await until(() => !resolver.snapshot().stale && urls().length === 2, "fresh answers from the restarted server");
  });

  it("rejects malformed SRV records with a warning, once, while the good ones serve", async () => {
    const dns = await dnsmasq({
      hosts: "127.0.0.2 r1.test\n",
      srv: [
        "_http._tcp.m.test,r1.test,8081,0,10",
        "_http._tcp.m.test,r1.test,0,0,10",
        "_http._tcp.m.test,ghost.test,8082,0,10",
      ],
    });
    const { resolver, warnings, urls } = watch(discover(dns, { name: "_http._tcp.m.test", type: "SRV" }));
    await until(() => urls().length > 0, "the first answer");
    expect(urls()).toEqual(["http://127.0.0.2:8081"]);
    expect(resolver.snapshot().stale).toBe(false);
    const source = `dns:SRV _http._tcp.m.test @${dns.server}`;
    expect(warnings).toContain(
      `weft discovery ${source}: rejected SRV record of _http._tcp.m.test "0 10 0 r1.test": port 0 is not a usable port (1–65535)`,
    );
    expect(warnings).toContain(
      `weft discovery ${source}: rejected SRV record of _http._tcp.m.test "0 10 8082 ghost.test": target ghost.test does not resolve to a usable address`,
    );
    expect(warnings).toHaveLength(2);

    // The next refreshes find the same bad records and do not warn again.
    const updatedAt = resolver.snapshot().updatedAt as number;
    await until(() => (resolver.snapshot().updatedAt as number) > updatedAt + 1000, "two more refreshes");
    expect(warnings).toHaveLength(2);
  });

  it("routes a client's requests to every server its SRV records name", async () => {
    const [a, b] = [await server(), await server()];
    const dns = await dnsmasq({
      hosts: "127.0.0.1 svc.test\n",
      srv: [`_http._tcp.x.test,svc.test,${a.port},0,10`, `_http._tcp.x.test,svc.test,${b.port},0,10`],
    });
    const client = scoped(
      createClient({
        service: "x",
        discovery: dnsDiscovery({ name: "_http._tcp.x.test", type: "SRV", servers: [dns.server] }),
        balancer: roundRobin(),
      }),
    );
    await until(() => client.snapshot().endpoints.length === 2, "the client to see both endpoints");
    for (let i = 0; i < 10; i++) {
      const res = await client.request({ path: `/item/${i}` });
      expect(res.status).toBe(200);
      await res.text();
    }
    expect(a.received.length).toBeGreaterThan(0);
    expect(b.received.length).toBeGreaterThan(0);
    expect(a.received.length + b.received.length).toBe(10);
  });

  it("marks a server that never answers stale (ETIMEOUT), and close() cancels a pending query at once", async () => {
    // A real UDP socket that reads queries and never replies: a blackholed DNS server.
    const silent = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", () => resolve()));
    defer(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const blackhole = `127.0.0.1:${silent.address().port}`;

    const timingOut = watch(
      dnsDiscovery({ name: "a.test", port: 8080, servers: [blackhole], timeoutMs: 200, tries: 1 }),
    );
    await until(() => timingOut.resolver.snapshot().stale, "the timeout");
    expect(timingOut.resolver.snapshot().lastError).toMatch(/ETIMEOUT/);
    expect(timingOut.warnings[0]).toContain(`dns:A a.test @${blackhole}`);

    const pending = watch(
      dnsDiscovery({ name: "a.test", port: 8080, servers: [blackhole], timeoutMs: 5000, tries: 1 }),
    );
    const started = performance.now();
    await pending.resolver.close();
    expect(performance.now() - started).toBeLessThan(500);
    expect(pending.warnings).toEqual([]);
  });
});

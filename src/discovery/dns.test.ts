import { describe, expect, it } from "vitest";
import { ErrorCodes, isWeftError, type InvalidOptionsError } from "../core/errors.js";
import { dnsDiscovery, type DnsDiscoveryOptions } from "./dns.js";
import {
  addressEndpoints,
  checkAddress,
  checkSrvRecord,
  describeSrv,
  hostPort,
  refreshDelayMs,
  srvEndpoints,
  srvPriorityGroups,
  type SrvRecord,
} from "./dns-records.js";

const srv = (name: string, port: number, priority: number, weight: number): SrvRecord => ({
  name,
  port,
  priority,
  weight,
});

function invalid(options: unknown): InvalidOptionsError {
  try {
    dnsDiscovery(options as DnsDiscoveryOptions);
  } catch (error) {
    expect(isWeftError(error)).toBe(true);
    expect((error as InvalidOptionsError).code).toBe(ErrorCodes.INVALID_OPTIONS);
    return error as InvalidOptionsError;
  }
  throw new Error("expected an InvalidOptionsError");
}

describe("refreshDelayMs", () => {
  it("follows the smallest TTL, in ms", () => {
    expect(refreshDelayMs([30, 5, 12], 1000, 30_000)).toBe(5000);
  });
  it("never refreshes faster than minRefreshMs (a TTL of 0 is not a query loop)", () => {
    expect(refreshDelayMs([0], 1000, 30_000)).toBe(1000);
  });
  it("never waits longer than maxRefreshMs", () => {
    expect(refreshDelayMs([86_400], 1000, 30_000)).toBe(30_000);
  });
  it("uses minRefreshMs when no TTL is known (IP-literal SRV targets)", () => {
    expect(refreshDelayMs([undefined], 1000, 30_000)).toBe(1000);
    expect(refreshDelayMs([], 250, 30_000)).toBe(250);
  });
});

describe("address records", () => {
  it("become http://ip:port endpoints, IPv6 in brackets, sorted and without duplicates", () => {
    const endpoints = addressEndpoints(
      [{ address: "127.0.0.3" }, { address: "127.0.0.2" }, { address: "127.0.0.3" }],
      8080,
      "http",
    );
    expect(endpoints).toEqual([{ url: "http://127.0.0.2:8080" }, { url: "http://127.0.0.3:8080" }]);
    expect(addressEndpoints([{ address: "::1" }], 443, "https")).toEqual([{ url: "https://[::1]:443" }]);
    expect(hostPort("fe80::1", 80)).toBe("[fe80::1]:80");
  });
  it("rejects the unspecified address and non-addresses", () => {
    expect(checkAddress("0.0.0.0")).toMatch(/unspecified/);
    expect(checkAddress("::")).toMatch(/unspecified/);
    expect(checkAddress("r1.test")).toMatch(/not an IP address/);
    expect(checkAddress("127.0.0.2")).toBeUndefined();
  });
});

describe("SRV records", () => {
  it("rejects port 0 and the '.' target (RFC 2782: no service here)", () => {
    expect(checkSrvRecord(srv("r1.test", 0, 0, 10))).toMatch(/port 0/);
    expect(checkSrvRecord(srv("", 1, 0, 0))).toMatch(/target "\."/);
    expect(checkSrvRecord(srv("r1.test", 8081, 0, 10))).toBeUndefined();
    expect(describeSrv(srv("", 1, 0, 0))).toBe("0 0 1 .");
  });

  it("groups by priority, lowest value first", () => {
    const groups = srvPriorityGroups([srv("b", 1, 20, 1), srv("a", 1, 10, 1), srv("c", 1, 20, 1)]);
    expect(groups.map((g) => g.map((r) => r.name))).toEqual([["a"], ["b", "c"]]);
  });

  it("maps targets to ip:srvPort endpoints weighted by the SRV weight, with the record in metadata", () => {
    const endpoints = srvEndpoints(
      [
        { record: srv("r1.test", 8081, 10, 60), addresses: [{ address: "127.0.0.1", ttl: 5 }] },
        { record: srv("r2.test", 8082, 10, 20), addresses: [{ address: "::1", ttl: 5 }] },
      ],
      "http",
    );
    expect(endpoints).toEqual([
      { url: "http://127.0.0.1:8081", weight: 60, metadata: { target: "r1.test", priority: "10", srvWeight: "60" } },
      { url: "http://[::1]:8082", weight: 20, metadata: { target: "r2.test", priority: "10", srvWeight: "20" } },
    ]);
  });

  it("gives weight 1 to every target when the whole group has weight 0", () => {
    const endpoints = srvEndpoints(
      [
        { record: srv("r1.test", 8081, 0, 0), addresses: [{ address: "127.0.0.1" }] },
        { record: srv("r2.test", 8082, 0, 0), addresses: [{ address: "127.0.0.2" }] },
      ],
      "http",
    );
    expect(endpoints.map((e) => e.weight)).toEqual([1, 1]);
  });

  it("gives a weight-0 target 1/100 of the smallest non-zero weight when others have weight", () => {
    const endpoints = srvEndpoints(
      [
        { record: srv("r1.test", 8081, 0, 50), addresses: [{ address: "127.0.0.1" }] },
        { record: srv("r2.test", 8082, 0, 0), addresses: [{ address: "127.0.0.2" }] },
      ],
      "http",
    );
    expect(endpoints.map((e) => e.weight)).toEqual([50, 0.5]);
    expect(endpoints.every((e) => (e.weight as number) > 0)).toBe(true);
  });

  it("splits a target's weight between its addresses, and leaves out targets with none", () => {
    const endpoints = srvEndpoints(
      [
        { record: srv("multi.test", 8081, 0, 10), addresses: [{ address: "127.0.0.2" }, { address: "127.0.0.3" }] },
        { record: srv("gone.test", 8082, 0, 10), addresses: [] },
      ],
      "https",
    );
    expect(endpoints.map((e) => [e.url, e.weight])).toEqual([
      ["https://127.0.0.2:8081", 5],
      ["https://127.0.0.3:8081", 5],
    ]);
  });

  it("merges two records that lead to the same ip:port, adding their weights", () => {
    const endpoints = srvEndpoints(
      [
        { record: srv("a.test", 8081, 0, 10), addresses: [{ address: "127.0.0.1" }] },
        { record: srv("b.test", 8081, 0, 30), addresses: [{ address: "127.0.0.1" }] },
      ],
      "http",
    );
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]?.weight).toBe(40);
  });
});

describe("dnsDiscovery options", () => {
  it("names the option, the value and what is allowed", () => {
    const error = invalid({ name: "a.test", port: 70000 });
    expect(error.option).toBe("dnsDiscovery.port");
    expect(error.message).toBe(
      "invalid option dnsDiscovery.port: got 70000; expected an integer port 1–65535 (required with type A: address records carry no port)",
    );
  });
  it("requires a DNS name", () => {
    expect(invalid({ port: 80 }).option).toBe("dnsDiscovery.name");
    expect(invalid({ name: "", port: 80 }).option).toBe("dnsDiscovery.name");
    expect(invalid({ name: "http://a.test", port: 80 }).message).toMatch(/got "http:\/\/a.test"; expected a DNS name/);
  });
  it("requires a port for A and AAAA, and refuses one for SRV", () => {
    expect(invalid({ name: "a.test" }).message).toMatch(
      /got undefined; expected an integer port 1–65535 \(required with type A/,
    );
    expect(invalid({ name: "a.test", type: "AAAA", port: 1.5 }).message).toMatch(/required with type AAAA/);
    expect(invalid({ name: "_http._tcp.a.test", type: "SRV", port: 80 }).message).toBe(
      "invalid option dnsDiscovery.port: got 80; expected no port with type SRV: every SRV record carries its own port",
    );
  });
  it("accepts only A, AAAA and SRV", () => {
    expect(invalid({ name: "a.test", type: "MX", port: 80 }).message).toBe(
      'invalid option dnsDiscovery.type: got "MX"; expected "A", "AAAA" or "SRV"',
    );
  });
  it("checks each server: ip, ip:port or [ipv6]:port", () => {
    expect(invalid({ name: "a.test", port: 80, servers: "127.0.0.1" }).option).toBe("dnsDiscovery.servers");
    expect(invalid({ name: "a.test", port: 80, servers: ["127.0.0.1:5353", "dns.test:53"] }).option).toBe(
      "dnsDiscovery.servers[1]",
    );
    expect(invalid({ name: "a.test", port: 80, servers: ["[127.0.0.1]:53"] }).option).toBe("dnsDiscovery.servers[0]");
    expect(invalid({ name: "a.test", port: 80, servers: ["127.0.0.1:0"] }).option).toBe("dnsDiscovery.servers[0]");
    expect(() =>
      dnsDiscovery({ name: "a.test", port: 80, servers: ["127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353"] }),
    ).not.toThrow();
  });
  it("checks refresh bounds, timeouts and the protocol", () => {
    expect(invalid({ name: "a.test", port: 80, minRefreshMs: 5000, maxRefreshMs: 1000 }).message).toBe(
      "invalid option dnsDiscovery.maxRefreshMs: got 1000; expected a number ≥ dnsDiscovery.minRefreshMs (5000)",
    );
    expect(invalid({ name: "a.test", port: 80, minRefreshMs: 0 }).option).toBe("dnsDiscovery.minRefreshMs");
    expect(invalid({ name: "a.test", port: 80, timeoutMs: 1.5 }).option).toBe("dnsDiscovery.timeoutMs");
    expect(invalid({ name: "a.test", port: 80, tries: 0 }).option).toBe("dnsDiscovery.tries");
    expect(invalid({ name: "a.test", port: 80, protocol: "ftp" }).option).toBe("dnsDiscovery.protocol");
    expect(invalid({ name: "a.test", port: 80, backoff: { baseMs: -1 } }).option).toBe("dnsDiscovery.backoff.baseMs");
  });
  it("rejects an unknown option and suggests the nearest", () => {
    expect(invalid({ name: "a.test", port: 80, server: ["127.0.0.1"] }).message).toMatch(
      /unknown option dnsDiscovery.server \(did you mean dnsDiscovery.servers\?\)/,
    );
  });
  it("keys the source so a mesh shares one resolver per name, port and server", () => {
    const a = dnsDiscovery({ name: "A.test.", port: 80, servers: ["127.0.0.1:5353"] });
    const b = dnsDiscovery({ name: "a.test", port: 80, servers: ["127.0.0.1:5353"] });
    expect(a.key).toBe(b.key);
    expect(a.key.startsWith("dns:A:a.test:80:127.0.0.1:5353")).toBe(true);
    expect(dnsDiscovery({ name: "a.test", port: 81, servers: ["127.0.0.1:5353"] }).key).not.toBe(a.key);
    expect(dnsDiscovery({ name: "_h._tcp.a.test", type: "SRV" }).key.startsWith("dns:SRV:_h._tcp.a.test::")).toBe(true);
  });
});

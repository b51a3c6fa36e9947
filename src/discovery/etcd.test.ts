/**
 * The pure parts of etcd discovery: value parsing, option checks, key ranges and default keys.
 * The watch, leases and failures run against a real etcd in test/integration/etcd.test.ts.
 */
import { describe, expect, it } from "vitest";
import { InvalidOptionsError, isWeftError } from "../core/errors.js";
import { prefixRangeEnd } from "../etcd/client.js";
import { defaultKeySuffix, etcdRegistration, type EtcdRegistrationOptions } from "./etcd-registration.js";
import { etcdDiscovery, parseEndpointValue, type EtcdDiscoveryOptions } from "./etcd.js";

function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error("expected an InvalidOptionsError");
}

const hosts = ["http://127.0.0.1:2379"];

describe("parseEndpointValue", () => {
  it("reads url, weight, zone and metadata, and ignores fields it does not know", () => {
    expect(
      parseEndpointValue(
        '{"url":"http://127.0.0.1:8081","weight":2,"zone":"a","metadata":{"v":"1"},"registeredBy":"x"}',
      ),
    ).toEqual({
      url: "http://127.0.0.1:8081",
      weight: 2,
      zone: "a",
      metadata: { v: "1" },
    });
    expect(parseEndpointValue('{"url":"https://10.0.0.7/api"}')).toEqual({ url: "https://10.0.0.7/api" });
  });

  it("says why a value is unusable", () => {
    expect(() => parseEndpointValue("{nope")).toThrow(/not JSON .*expected \{ "url"/);
    expect(() => parseEndpointValue('"http://127.0.0.1:8081"')).toThrow(/expected a JSON object/);
    expect(() => parseEndpointValue('{"url":"ftp://127.0.0.1:21"}')).toThrow(/protocol ftp:; allowed: http:, https:/);
    expect(() => parseEndpointValue('{"url":"127.0.0.1:8081"}')).toThrow(/not an absolute URL|protocol/);
    expect(() => parseEndpointValue('{"weight":1}')).toThrow(/expected a URL string/);
    expect(() => parseEndpointValue('{"url":"http://127.0.0.1:1","weight":0}')).toThrow(
      /weight must be a positive number, got 0/,
    );
    expect(() => parseEndpointValue('{"url":"http://127.0.0.1:1","zone":7}')).toThrow(
      /zone must be a non-empty string, got 7/,
    );
    expect(() => parseEndpointValue('{"url":"http://127.0.0.1:1","metadata":{"n":1}}')).toThrow(
      /metadata must be an object of strings/,
    );
  });
});

describe("etcdDiscovery options", () => {
  it("shares resolvers by hosts and prefix", () => {
    expect(etcdDiscovery({ hosts, prefix: "/services/catalog/" }).key).toBe(
      "etcd:http://127.0.0.1:2379:/services/catalog/",
    );
    expect(etcdDiscovery({ hosts: ["http://a:2379/", "https://b:2379"], prefix: "/p/" }).key).toBe(
      "etcd:http://a:2379,https://b:2379:/p/",
    );
  });

  it("fails at construction, naming the option and what is allowed", () => {
    const make = (options: unknown) => () => etcdDiscovery(options as EtcdDiscoveryOptions);
    expect(invalid(make({ hosts: [], prefix: "/p/" })).message).toMatch(
      /invalid option etcdDiscovery.hosts: got \[\]; expected a non-empty array of http\(s\) URLs/,
    );
    expect(invalid(make({ hosts: "http://127.0.0.1:2379", prefix: "/p/" })).option).toBe("etcdDiscovery.hosts");
    expect(invalid(make({ hosts: ["127.0.0.1:2379"], prefix: "/p/" })).option).toBe("etcdDiscovery.hosts[0]");
    expect(invalid(make({ hosts: ["http://127.0.0.1:2379/v3"], prefix: "/p/" })).option).toBe("etcdDiscovery.hosts[0]");
    expect(invalid(make({ hosts, prefix: "" })).message).toMatch(
      /etcdDiscovery.prefix: got ""; expected a non-empty key prefix/,
    );
    expect(invalid(make({ hosts, prefix: "/p/", requestTimeoutMs: 0 })).option).toBe("etcdDiscovery.requestTimeoutMs");
    expect(invalid(make({ hosts, prefix: "/p/", backoff: { baseMs: 100, maxMs: 10 } })).option).toBe(
      "etcdDiscovery.backoff.maxMs",
    );
    expect(invalid(make({ hosts, prefx: "/p/" })).message).toMatch(
      /unknown option etcdDiscovery.prefx \(did you mean etcdDiscovery.prefix\?\)/,
    );
    expect(isWeftError(invalid(make(undefined)))).toBe(true);
  });
});

describe("etcdRegistration options", () => {
  const register = (options: Partial<EtcdRegistrationOptions>) =>
    etcdRegistration({ hosts, prefix: "/p/", url: "http://127.0.0.1:8081", ...options });

  it("rejects bad options before calling etcd", async () => {
    await expect(register({ ttlSeconds: 0.5 })).rejects.toThrow(
      /etcdRegistration.ttlSeconds: got 0.5; expected an integer number of seconds ≥ 1/,
    );
    await expect(register({ ttlSeconds: 0 })).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(register({ url: "localhost:8081" })).rejects.toThrow(/etcdRegistration/);
    await expect(register({ weight: -1 })).rejects.toThrow(/weight must be a positive number/);
    await expect(register({ metadata: { n: 1 } as never })).rejects.toThrow(/metadata must be an object of strings/);
    await expect(register({ key: "" })).rejects.toThrow(/etcdRegistration.key/);
    await expect(register({ hosts: [] })).rejects.toThrow(/etcdRegistration.hosts/);
    await expect(register({ ttl: 5 } as never)).rejects.toThrow(/unknown option etcdRegistration.ttl/);
  });

  it("derives a stable key from host:port and path", () => {
    expect(defaultKeySuffix("http://127.0.0.1:8081")).toBe("127.0.0.1%3A8081");
    expect(defaultKeySuffix("http://[::1]:8081/api/")).toBe("%5B%3A%3A1%5D%3A8081%2Fapi");
  });
});

describe("prefixRangeEnd", () => {
  const decode = (b64: string) => [...Buffer.from(b64, "base64")];
  it("is the prefix with its last byte incremented, as etcd's clients compute it", () => {
    expect(Buffer.from(prefixRangeEnd("/services/a/"), "base64").toString()).toBe("/services/a0");
    expect(decode(prefixRangeEnd("a\u00ff"))).toEqual([0x61, 0xc3, 0xc0]);
    expect(decode(prefixRangeEnd(""))).toEqual([0]);
  });
});

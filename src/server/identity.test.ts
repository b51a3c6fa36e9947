import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { parseSpiffeId, readIdentity, spiffeUrisOf, uriFromXfcc, type HeaderIdentityConfig } from "./identity.js";

/** The fields of a request the reader looks at; a real socket's are the same properties. */
function request(
  headers: Record<string, string | string[]>,
  socket: Record<string, unknown> = { remoteAddress: "127.0.0.1" },
): IncomingMessage {
  return { headers: { ...headers }, socket } as unknown as IncomingMessage;
}
const XFCC: HeaderIdentityConfig = {
  header: "x-forwarded-client-cert",
  format: "xfcc",
  trustedProxies: new Set(["127.0.0.1"]),
};
const PLAIN: HeaderIdentityConfig = {
  header: "x-weft-peer-identity",
  format: "spiffe",
  trustedProxies: new Set(["127.0.0.1", "::1"]),
};

describe("parseSpiffeId", () => {
  it("splits a valid ID into trust domain and path", () => {
    expect(parseSpiffeId("spiffe://example.org/ns/shop/sa/checkout")).toEqual({
      id: "spiffe://example.org/ns/shop/sa/checkout",
      trustDomain: "example.org",
      path: "/ns/shop/sa/checkout",
    });
    expect(parseSpiffeId("spiffe://example.org")).toEqual({
      id: "spiffe://example.org",
      trustDomain: "example.org",
      path: "",
    });
  });

  it("says why an ID is invalid, per the SPIFFE-ID spec", () => {
    expect(parseSpiffeId("https://example.org/x")).toBe("not a spiffe:// URI");
    expect(parseSpiffeId("spiffe:///ns/x")).toBe("no trust domain");
    expect(parseSpiffeId("spiffe://Example.org/x")).toMatch(/trust domain may hold only lower-case/);
    expect(parseSpiffeId("spiffe://example.org:8443/x")).toMatch(/trust domain/);
    expect(parseSpiffeId("spiffe://example.org/ns//x")).toBe("an empty path segment");
    expect(parseSpiffeId("spiffe://example.org/ns/x/")).toBe("an empty path segment");
    expect(parseSpiffeId("spiffe://example.org/ns/../x")).toBe("a '.' or '..' path segment");
    expect(parseSpiffeId("spiffe://example.org/ns/.")).toBe("a '.' or '..' path segment");
    expect(parseSpiffeId("spiffe://example.org/.hidden/..x")).toMatchObject({ path: "/.hidden/..x" });
    expect(parseSpiffeId("spiffe://example.org/ns/x?y=1")).toMatch(/path segment may hold only/);
    expect(parseSpiffeId("spiffe://example.org/" + "a".repeat(2100))).toMatch(/longer than 2048/);
  });
});

describe("spiffeUrisOf and uriFromXfcc", () => {
  it("finds the spiffe URIs in a certificate's subjectaltname", () => {
    expect(spiffeUrisOf("DNS:web.local, URI:spiffe://example.org/sa/web, URI:https://x")).toEqual([
      "spiffe://example.org/sa/web",
    ]);
    expect(spiffeUrisOf(undefined)).toEqual([]);
  });

  it("takes the URI of the last XFCC element, unquoted", () => {
    expect(uriFromXfcc("By=spiffe://example.org/sa/proxy;Hash=abc;URI=spiffe://example.org/sa/web")).toBe(
      "spiffe://example.org/sa/web",
    );
    expect(
      uriFromXfcc('URI=spiffe://a.org/sa/first,By=x;URI="spiffe://example.org/sa/second";Subject="CN=a,O=b"'),
    ).toBe("spiffe://example.org/sa/second");
    expect(uriFromXfcc("Hash=abc")).toBeUndefined();
  });
});

describe("readIdentity", () => {
  it("reads a verified client certificate's SPIFFE ID", () => {
    const socket = {
      encrypted: true,
      authorized: true,
      remoteAddress: "10.0.0.1",
      getPeerCertificate: () => ({ subjectaltname: "URI:spiffe://example.org/sa/web" }),
    };
    expect(readIdentity(request({}, socket), null)).toEqual({
      kind: "valid",
      identity: { id: "spiffe://example.org/sa/web", trustDomain: "example.org", path: "/sa/web", source: "tls" },
    });
  });

  it("calls a certificate with no SPIFFE SAN, or two, malformed — never anonymous", () => {
    const cert = (san: string) =>
      request({}, { encrypted: true, authorized: true, getPeerCertificate: () => ({ subjectaltname: san }) });
    expect(readIdentity(cert("DNS:web.local"), null)).toMatchObject({
      kind: "malformed",
      source: "tls",
      reason: expect.stringMatching(/no spiffe/),
    });
    expect(readIdentity(cert("URI:spiffe://a.org/x, URI:spiffe://b.org/y"), null)).toMatchObject({
      kind: "malformed",
      reason: expect.stringMatching(/2 spiffe/),
    });
  });

  it("reads a connection's certificate once, however many requests it carries", () => {
    let reads = 0;
    const socket = {
      encrypted: true,
      authorized: true,
      getPeerCertificate: () => (reads++, { subjectaltname: "URI:spiffe://example.org/sa/web" }),
    };
    const first = readIdentity(request({}, socket), null);
    const second = readIdentity(request({}, socket), null);
    expect(second).toBe(first);
    expect(reads).toBe(1);
    expect(Object.isFrozen(first)).toBe(true);
    const other = { ...socket };
    expect(readIdentity(request({}, other), null)).toEqual(first);
    expect(reads).toBe(2);
  });

  it("keeps a header value's reading in the cache it is given, bounded, and still refuses an untrusted sender", () => {
    const cache = new Map();
    const value = "spiffe://example.org/sa/web";
    const first = readIdentity(request({ "x-weft-peer-identity": value }), PLAIN, cache);
    expect(readIdentity(request({ "x-weft-peer-identity": value }), PLAIN, cache)).toBe(first);
    expect(first).toMatchObject({ kind: "valid", identity: { id: value, source: "header" } });
    // A cached value is still only believed from a trusted proxy.
    expect(
      readIdentity(request({ "x-weft-peer-identity": value }, { remoteAddress: "10.9.9.9" }), PLAIN, cache),
    ).toEqual({ kind: "none" });
    // Malformed readings are cached as they are.
    expect(readIdentity(request({ "x-weft-peer-identity": "spiffe://EVIL/x" }), PLAIN, cache)).toMatchObject({
      kind: "malformed",
    });
    for (let i = 0; i < 1000; i++)
      readIdentity(request({ "x-weft-peer-identity": `spiffe://example.org/sa/w${i}` }), PLAIN, cache);
    expect(cache.size).toBeLessThanOrEqual(256);
  });

  it("ignores a certificate the TLS layer did not verify", () => {
    const socket = {
      encrypted: true,
      authorized: false,
      getPeerCertificate: () => ({ subjectaltname: "URI:spiffe://example.org/sa/web" }),
    };
    expect(readIdentity(request({}, socket), null)).toEqual({ kind: "none" });
  });

  it("reads a trusted proxy's header, in XFCC or plain form, IPv4-mapped addresses included", () => {
    expect(
      readIdentity(request({ "x-forwarded-client-cert": "Hash=1;URI=spiffe://example.org/sa/web" }), XFCC),
    ).toMatchObject({ kind: "valid", identity: { id: "spiffe://example.org/sa/web", source: "header" } });
    expect(
      readIdentity(
        request({ "x-weft-peer-identity": "spiffe://example.org/sa/web" }, { remoteAddress: "::ffff:127.0.0.1" }),
        PLAIN,
      ),
    ).toMatchObject({ kind: "valid" });
  });

  it("drops the header from anyone but a trusted proxy, so nobody downstream reads a forged one", () => {
    const req = request({ "x-weft-peer-identity": "spiffe://example.org/sa/admin" }, { remoteAddress: "10.1.2.3" });
    expect(readIdentity(req, PLAIN)).toEqual({ kind: "none" });
    expect(req.headers["x-weft-peer-identity"]).toBeUndefined();
  });

  it("calls an unreadable header malformed, without repeating its value", () => {
    const bad = readIdentity(request({ "x-weft-peer-identity": "spiffe://EVIL/x" }), PLAIN);
    expect(bad).toMatchObject({ kind: "malformed", source: "header" });
    expect(JSON.stringify(bad)).not.toContain("EVIL");
    expect(readIdentity(request({ "x-forwarded-client-cert": "Hash=abc" }), XFCC)).toMatchObject({
      kind: "malformed",
      reason: expect.stringMatching(/carries no URI/),
    });
    expect(readIdentity(request({ "x-weft-peer-identity": ["a", "b"] }), PLAIN)).toMatchObject({
      kind: "malformed",
      reason: expect.stringMatching(/more than once/),
    });
  });

  it("reads nothing from headers when no header identity is configured", () => {
    expect(readIdentity(request({ "x-forwarded-client-cert": "URI=spiffe://example.org/sa/web" }), null)).toEqual({
      kind: "none",
    });
  });
});

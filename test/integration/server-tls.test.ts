/**
 * Peer identity from mTLS, end to end: a real `https` server asking for client certificates,
 * real certificates made with openssl (SPIFFE IDs in their URI SANs), real TLS clients. The
 * server's access rules read the identity the TLS socket verified, and the handler sees it.
 */
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Agent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inbound, inboundContext, type Inbound } from "weft/server";
import { hasOpenssl, makePki, type Pem, type TestPki } from "../helpers/certs.js";

describe.skipIf(!hasOpenssl)("mTLS peer identity", () => {
  let pki: TestPki;
  let server: https.Server;
  let ib: Inbound;
  let url: string;
  const agents: Agent[] = [];

  beforeAll(async () => {
    pki = makePki();
    ib = inbound({
      service: "orders",
      onWarning: () => {},
      authz: {
        rules: [{ paths: ["/public"] }, { paths: ["/orders/*"], from: ["spiffe://example.org/ns/shop/*"] }],
      },
    });
    server = https.createServer(
      { ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: false },
      ib.handler((_req, res) => {
        const ctx = inboundContext()!;
        res.end(JSON.stringify({ identity: ctx.identity, scheme: ctx.scheme }));
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await ib.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    pki.close();
  });

  async function call(path: string, client?: Pem) {
    const agent = new Agent({ connect: { ca: pki.ca, ...(client ?? {}) } });
    agents.push(agent);
    const res = await undiciRequest(url + path, { dispatcher: agent });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> };
  }

  it("allows a workload whose certificate names an allowed SPIFFE ID, and shows it to the handler", async () => {
    const web = pki.client("web", "URI:spiffe://example.org/ns/shop/sa/web,DNS:web.shop.svc");
    const res = await call("/orders/7", web);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      identity: {
        id: "spiffe://example.org/ns/shop/sa/web",
        trustDomain: "example.org",
        path: "/ns/shop/sa/web",
        source: "tls",
      },
      scheme: "https",
    });
  });

  it("denies a verified workload the rules do not list", async () => {
    const ads = pki.client("ads", "URI:spiffe://example.org/ns/ads/sa/tracker");
    const res = await call("/orders/7", ads);
    expect(res.status).toBe(403);
    expect(res.body.message).toBe("spiffe://example.org/ns/ads/sa/tracker is not allowed to GET /orders/7");
  });

  it("calls a verified certificate with no SPIFFE ID malformed (401), never anonymous", async () => {
    const plain = pki.client("plain", "DNS:plain.example");
    const res = await call("/orders/7", plain);
    expect(res.status).toBe(401);
    expect(String(res.body.message)).toMatch(
      /malformed peer identity \(tls\): the client certificate has no spiffe:\/\/ URI SAN/,
    );
  });

  it("calls a certificate with two SPIFFE IDs malformed", async () => {
    const two = pki.client("two", "URI:spiffe://example.org/ns/shop/sa/a,URI:spiffe://example.org/ns/shop/sa/b");
    expect((await call("/orders/7", two)).status).toBe(401);
  });

  it("answers 401 to a caller with no certificate on a route that needs one, and serves it a public route", async () => {
    const none = await call("/orders/7");
    expect(none.status).toBe(401);
    expect(none.body.error).toBe("unauthenticated");
    expect((await call("/public")).body).toEqual({ identity: null, scheme: "https" });
  });

  it("does not believe a certificate from another CA (the TLS layer did not verify it)", async () => {
    const other = makePki();
    try {
      const stranger = other.client("stranger", "URI:spiffe://example.org/ns/shop/sa/web");
      expect((await call("/orders/7", stranger)).status).toBe(401);
    } finally {
      other.close();
    }
  });
});

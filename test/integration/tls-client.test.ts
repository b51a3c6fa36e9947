/**
 * TLS origination and the SPIFFE identity check, end to end: real `https` servers on 127.0.0.1
 * with certificates made by openssl, a weft client with `tls` options over the undici transport.
 *
 * Right identity works; a wrong one fails the handshake with WEFT_ERR_IDENTITY before the request
 * is written (the server's handler never runs), is never resent to the same endpoint, and is
 * counted in the snapshot; an expired certificate, an unknown CA and a certificate that does not
 * name the host each fail with WEFT_ERR_TLS saying which; mTLS presents the client certificate
 * and the server's `weft/server` reads its SPIFFE ID; SNI follows the endpoint's host name.
 */
import http from "node:http";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClient,
  IdentityError,
  staticDiscovery,
  TlsError,
  undiciTransport,
  type Client,
  type ClientOptions,
} from "weft";
import { inbound, inboundContext } from "weft/server";
import { hasOpenssl, makePki, type Pem, type TestPki } from "../helpers/certs.js";
import { defer, listening, scoped } from "../helpers/scope.js";
import { invalidOptionText } from "../helpers/options.js";

const ORDERS = "spiffe://example.org/ns/shop/sa/orders";

interface TestHttps {
  readonly url: string;
  readonly port: number;
  /** Requests the handler ran. */
  handled: number;
  /** The SNI each TLS connection carried (false: none). */
  readonly servernames: (string | false)[];
  readonly http: https.Server;
}

async function httpsServer(
  options: https.ServerOptions,
  handler?: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void,
): Promise<TestHttps> {
  const state = { handled: 0, servernames: [] as (string | false)[] };
  const server = https.createServer(options, (req, res) => {
    state.handled++;
    if (handler !== undefined) return handler(req, res);
    res.end("ok");
  });
  server.on("secureConnection", (socket: TLSSocket) =>
    state.servernames.push((socket as TLSSocket & { servername?: string | false }).servername ?? false),
  );
  server.on("tlsClientError", () => {});
  const port = await listening(server);
  return Object.assign(state, { url: `https://127.0.0.1:${port}`, port, http: server });
}

describe.skipIf(!hasOpenssl)("TLS origination and SPIFFE identity", () => {
  let pki: TestPki;
  let other: TestPki;
  let impostor: Pem;
  let expired: Pem;
  let wrongHost: Pem;
  let localhost: Pem;
  let webClient: Pem;

  beforeAll(() => {
    pki = makePki();
    other = makePki();
    impostor = pki.issue("impostor", {
      sans: "IP:127.0.0.1,URI:spiffe://example.org/ns/shop/sa/impostor",
      usage: "server",
    });
    expired = pki.issue("expired", { sans: `IP:127.0.0.1,URI:${ORDERS}`, usage: "server", expired: true });
    wrongHost = pki.issue("wrong-host", { sans: "IP:127.0.0.2,DNS:orders.shop.svc", usage: "server" });
    localhost = pki.issue("localhost", { sans: `DNS:localhost,URI:${ORDERS}`, usage: "server" });
    webClient = pki.client("web", "URI:spiffe://example.org/ns/shop/sa/web");
  });
  afterAll(() => {
    pki.close();
    other.close();
  });

  const client = (urls: string[], extra: Partial<ClientOptions> = {}): Client =>
    scoped(
      createClient({
        service: "orders",
        discovery: staticDiscovery(urls),
        tls: { ca: pki.ca, identity: ORDERS },
        ...extra,
      }),
    );

  it("calls a server that presents the expected SPIFFE ID, and shows the TLS state in the snapshot", async () => {
    const server = await httpsServer({ ...pki.server });
    const c = client([server.url]);
    const res = await c.request({ path: "/x" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
    const tls = c.snapshot().tls!;
    expect(tls).toMatchObject({
      identity: [ORDERS],
      insecure: false,
      identityFailures: 0,
      lastIdentityFailure: null,
      tlsFailures: {},
    });
    expect(tls.material).toMatchObject({ source: "inline", version: 1 });
  });

  it("accepts a trust-domain pattern", async () => {
    const server = await httpsServer({ ...pki.server });
    const c = client([server.url], { tls: { ca: pki.ca, identity: "spiffe://example.org/ns/shop/*" } });
    expect((await c.request({ path: "/x" })).status).toBe(200);
  });

  it("fails a server with another identity with WEFT_ERR_IDENTITY before the request is sent, once, and counts it", async () => {
    const server = await httpsServer({ ...impostor });
    const c = client([server.url], { retry: { maxAttempts: 3 } });
    const error = await c.request({ method: "POST", path: "/pay", body: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect(error).toMatchObject({
      code: "WEFT_ERR_IDENTITY",
      endpoint: server.url,
      expected: [ORDERS],
      presented: ["spiffe://example.org/ns/shop/sa/impostor"],
    });
    expect((error as Error).message).toBe(
      `${server.url} presented spiffe://example.org/ns/shop/sa/impostor; expected ${ORDERS}`,
    );
    // Never resent to the same endpoint (the only one): one attempt, and the handler never ran.
    expect(server.handled).toBe(0);
    const snap = c.snapshot();
    expect(snap.counters).toMatchObject({ calls: 1, attempts: 1, failures: 1 });
    expect(snap.tls!.identityFailures).toBe(1);
    expect(snap.tls!.lastIdentityFailure).toMatchObject({ presented: ["spiffe://example.org/ns/shop/sa/impostor"] });
  });

  it("resends a non-idempotent call from an impostor to the right server, never to the impostor again", async () => {
    const good = await httpsServer({ ...pki.server });
    const bad = await httpsServer({ ...impostor });
    const c = client([good.url, bad.url], { retry: { maxAttempts: 3 }, outlier: false, breaker: false });
    const perCall: string[][] = [];
    c.events.onAttemptEnd((e) => {
      if (e.attempt === 0) perCall.push([]);
      perCall.at(-1)!.push(`${e.endpoint} ${e.outcome}`);
    });
    for (let i = 0; i < 20; i++) {
      const res = await c.request({ method: "POST", path: "/pay", body: String(i) });
      expect(res.status).toBe(200);
      await res.text();
    }
    expect(good.handled).toBe(20);
    expect(bad.handled).toBe(0);
    for (const attempts of perCall) {
      const toBad = attempts.filter((a) => a.startsWith(bad.url));
      expect(toBad.length).toBeLessThanOrEqual(1);
      expect(attempts.at(-1)).toBe(`${good.url} success`);
    }
    expect(perCall.some((a) => a.length === 2)).toBe(true);
    expect(c.snapshot().tls!.identityFailures).toBeGreaterThan(0);
  });

  it("says an expired server certificate has expired", async () => {
    const server = await httpsServer({ ...expired });
    const error = await client([server.url], { retry: false })
      .request({ path: "/x" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TlsError);
    expect(error).toMatchObject({ code: "WEFT_ERR_TLS", tlsCode: "CERT_HAS_EXPIRED" });
    expect((error as Error).message).toBe(
      `TLS handshake with ${server.url} failed: the server's certificate has expired (CERT_HAS_EXPIRED)`,
    );
  });

  it("says a certificate from an unknown CA is not signed by the trust bundle", async () => {
    const server = await httpsServer({ ...other.server });
    const c = client([server.url], { retry: false });
    const error = await c.request({ path: "/x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "WEFT_ERR_TLS", tlsCode: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect((error as Error).message).toMatch(/not signed by a CA in the trust bundle/);
    expect(c.snapshot().tls!.tlsFailures).toEqual({ UNABLE_TO_VERIFY_LEAF_SIGNATURE: 1 });
  });

  it("without an expected identity checks the host name, and says when the certificate does not name it", async () => {
    const server = await httpsServer({ ...wrongHost });
    const c = client([server.url], { retry: false, tls: { ca: pki.ca } });
    const error = await c.request({ path: "/x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "WEFT_ERR_TLS", tlsCode: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect((error as Error).message).toMatch(/does not name this host: .*127\.0\.0\.1/);
    const right = await httpsServer({ ...pki.server });
    expect((await client([right.url], { tls: { ca: pki.ca } }).request({ path: "/x" })).status).toBe(200);
  });

  it("says an https:// endpoint that answers plain HTTP does not speak TLS", async () => {
    const plain = http.createServer((_req, res) => res.end("plain"));
    const port = await listening(plain);
    const error = await client([`https://127.0.0.1:${port}`], { retry: false })
      .request({ path: "/x" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "WEFT_ERR_TLS", tlsCode: "ERR_SSL_WRONG_VERSION_NUMBER" });
    expect((error as Error).message).toMatch(/does not speak TLS/);
  });

  it("presents the client certificate (mTLS): the server's weft/server reads its SPIFFE ID; without one the server refuses the connection", async () => {
    const ib = inbound({
      service: "orders",
      onWarning: () => {},
      tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
    });
    defer(() => ib.close());
    const server = await httpsServer(
      ib.tlsOptions(),
      ib.handler((_req, res) => res.end(String(inboundContext()?.identity?.id))),
    );
    ib.attach(server.http);
    const withCert = client([server.url], {
      tls: { ca: pki.ca, cert: webClient.cert, key: webClient.key, identity: ORDERS },
    });
    const res = await withCert.request({ path: "/who" });
    expect(await res.text()).toBe("spiffe://example.org/ns/shop/sa/web");
    const without = client([server.url], { retry: false });
    const error = await without.request({ path: "/who" }).catch((e: unknown) => e);
    // TLS 1.3: the client's handshake completes before the server checks for its certificate, so
    // the client sees the server close the connection, not a TLS alert (docs/security.md).
    expect(error).toMatchObject({ code: "UND_ERR_SOCKET" });
    expect(server.handled).toBe(1);
    expect(ib.snapshot().tls).toMatchObject({
      clientCert: "require",
      handshakeFailures: { ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 1 },
    });
  });

  it("sends SNI for a host name and none for an IP address; servername overrides", async () => {
    const byName = await httpsServer({ ...localhost });
    const named = client([`https://localhost:${byName.port}`]);
    expect((await named.request({ path: "/x" })).status).toBe(200);
    expect(byName.servernames).toEqual(["localhost"]);
    const byIp = await httpsServer({ ...pki.server });
    await (await client([byIp.url]).request({ path: "/x" })).text();
    expect(byIp.servernames).toEqual([false]);
    await (
      await client([byIp.url], { tls: { ca: pki.ca, identity: ORDERS, servername: "orders.shop.svc" } }).request({
        path: "/x",
      })
    ).text();
    expect(byIp.servernames).toEqual([false, "orders.shop.svc"]);
  });

  it("insecure: true skips verification for tests, and warns; it refuses to pair with an identity", async () => {
    const server = await httpsServer({ ...other.server });
    const warnings: string[] = [];
    const c = scoped(
      createClient({
        service: "orders",
        discovery: staticDiscovery([server.url]),
        transport: undiciTransport({ tls: { insecure: true, onWarning: (m) => warnings.push(m) } }),
      }),
    );
    expect((await c.request({ path: "/x" })).status).toBe(200);
    expect(warnings.filter((w) => /NOT verified/.test(w))).toHaveLength(1);
    expect(c.snapshot().tls!.insecure).toBe(true);
    expect(invalidOptionText(() => undiciTransport({ tls: { insecure: true, identity: ORDERS } }))).toMatch(
      /transport\.tls\.insecure/,
    );
  });

  it("refuses bad TLS options at construction, naming the option", () => {
    expect(invalidOptionText(() => undiciTransport({ tls: { ca: "not a pem" } }))).toMatch(
      /transport\.tls\.ca.*no complete PEM block/,
    );
    expect(invalidOptionText(() => undiciTransport({ tls: { ca: pki.ca, identity: "https://example.org" } }))).toMatch(
      /transport\.tls\.identity\[0\].*not a spiffe:\/\/ URI/,
    );
    expect(
      invalidOptionText(() => undiciTransport({ tls: { ca: pki.ca, cert: webClient.cert, key: pki.server.key } })),
    ).toMatch(/transport\.tls\.cert.*not the certificate's/);
    expect(invalidOptionText(() => undiciTransport({ tls: { ca: pki.ca, bogus: 1 } as never }))).toMatch(/bogus/);
    expect(
      invalidOptionText(() =>
        createClient({
          service: "x",
          discovery: staticDiscovery(["https://127.0.0.1:1"]),
          tls: { ca: pki.ca },
          transport: undiciTransport(),
        }),
      ),
    ).toMatch(/^tls/);
  });
});

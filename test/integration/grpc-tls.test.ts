/**
 * weft's `tls` on a gRPC client, end to end: real `@grpc/grpc-js` servers on 127.0.0.1 with TLS
 * certificates made by openssl, a `grpcClient` with the `tls` option `createClient` takes.
 *
 * mTLS with the expected SPIFFE ID works and shows in the snapshot; a server with another SPIFFE
 * ID (or, without `identity`, a certificate for another host) is refused inside the handshake —
 * the call fails UNAVAILABLE saying why, is never resent to that server, and goes to another one
 * even when it is not idempotent (it was never sent); a server that requires a client certificate
 * refuses a client without one, and an expired server certificate fails in Node's verification —
 * grpc-js reports both as text only, so they are not resent as if unsent; after the client's files
 * rotate, new calls present the new certificate while a call in flight on the old channel
 * completes, and a call still waiting for the old channel's connection is resent; bad options fail
 * at construction with createClient's words.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, createMesh, roundRobin, staticDiscovery, tlsFiles } from "weft";
import { grpcClient, type GrpcClientOptions, type GrpcServiceClient, type GrpcUnaryMethod } from "weft/grpc";
import { hasOpenssl, makePki, type Pem, type TestPki } from "../helpers/certs.js";
import { loadEcho, reply, startEchoServer, type EchoReply, type EchoRequest } from "../helpers/grpc.js";
import { defer, scoped } from "../helpers/scope.js";
import { until } from "../helpers/until.js";
import { invalidOptionText } from "../helpers/options.js";
import { rejection } from "../helpers/rejection.js";

const ORDERS = "spiffe://example.org/ns/shop/sa/orders";
const WEB = "spiffe://example.org/ns/shop/sa/web";
const IMPOSTOR = "spiffe://example.org/ns/shop/sa/impostor";

interface EchoMethods {
  get: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply>;
  put: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply>;
}

const Echo = loadEcho();

interface TlsEchoServer {
  readonly url: string;
  /** Calls the handlers ran. */
  calls: number;
  /** The serial of the client certificate each call came with ("" for none). */
  readonly peers: string[];
  /** Calls whose text is "hold": answered when the test calls `release()`. */
  release(): void;
  close(): Promise<void>;
}

/**
 * An Echo server over TLS presenting `pem`; with `clientCa`, it requires a client certificate
 * from that CA. Each call answers with the serial of the client certificate it came with.
 */
async function tlsServer(pem: Pem, clientCa?: string): Promise<TlsEchoServer> {
  const server = new grpc.Server();
  const held: (() => void)[] = [];
  const state = { calls: 0, peers: [] as string[] };
  const handler: grpc.handleUnaryCall<EchoRequest, EchoReply> = (call, callback) => {
    state.calls++;
    const serial = call.getAuthContext().sslPeerCertificate?.serialNumber ?? "";
    state.peers.push(serial);
    const answer = (): void => callback(null, reply(call.request, { text: serial }));
    if (call.request.text === "hold") held.push(answer);
    else answer();
  };
  server.addService(Echo.service, { Get: handler, Put: handler });
  const credentials = grpc.ServerCredentials.createSsl(
    clientCa === undefined ? null : Buffer.from(clientCa),
    [{ private_key: Buffer.from(pem.key), cert_chain: Buffer.from(pem.cert) }],
    clientCa !== undefined,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, p) => (error === null ? resolve(p) : reject(error))),
  );
  return scoped(
    Object.assign(state, {
      url: `https://127.0.0.1:${port}`,
      release: () => held.splice(0).forEach((answer) => answer()),
      close: async () => server.forceShutdown(),
    }),
  );
}

function echo(urls: string[], options: Partial<GrpcClientOptions>): GrpcServiceClient<EchoMethods> {
  return scoped(grpcClient<EchoMethods>(Echo, { service: "orders", discovery: staticDiscovery(urls), ...options }));
}

/** The ServiceError a call rejects with. */
const failure = (pending: Promise<unknown>): Promise<grpc.ServiceError> => rejection<grpc.ServiceError>(pending);

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

/**
 * A TCP proxy on 127.0.0.1 to `port` that holds its first connection (accepted, never answered:
 * a handshake that does not finish) and forwards the others. Returns its port.
 */
async function holdFirstConnection(port: number): Promise<{ readonly port: number; connections: number }> {
  const state = { connections: 0 };
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    if (state.connections++ === 0) return;
    const upstream = net.connect(port, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("error", () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  defer(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });
  return Object.assign(state, { port: (proxy.address() as net.AddressInfo).port });
}

let rotatingDirs = 0;

/** Client files a test rewrites, and the `tlsFiles` source reading them. */
function rotatingFiles(
  pki: TestPki,
  first: Pem,
): { readonly cert: string; readonly key: string; readonly source: ReturnType<typeof tlsFiles> } {
  const dir = join(pki.dir, `rotating-${rotatingDirs++}`);
  mkdirSync(dir);
  const files = { cert: join(dir, "svid.pem"), key: join(dir, "svid_key.pem"), ca: join(dir, "bundle.pem") };
  writeFileSync(files.cert, first.cert);
  writeFileSync(files.key, first.key);
  writeFileSync(files.ca, pki.ca);
  // A key written before its certificate is refused once, with a warning, until the pair matches.
  const source = tlsFiles({ ...files, pollMs: 100, onWarning: () => {} });
  defer(async () => source.close());
  return { cert: files.cert, key: files.key, source };
}

describe.skipIf(!hasOpenssl)("gRPC with weft's tls", () => {
  let pki: TestPki;
  let impostor: Pem;
  let web: Pem;

  beforeAll(() => {
    pki = makePki();
    impostor = pki.issue("impostor", { sans: `IP:127.0.0.1,URI:${IMPOSTOR}`, usage: "server" });
    web = pki.client("web", `URI:${WEB}`);
  });
  afterAll(() => pki.close());

  it("calls over mTLS a server that presents the expected SPIFFE ID, presenting the client certificate, and shows the TLS state in the snapshot", async () => {
    const server = await tlsServer(pki.server, pki.ca);
    const c = echo([server.url], { tls: { ca: pki.ca, cert: web.cert, key: web.key, identity: ORDERS } });
    const answer = await c.get({ text: "hi" });
    expect(answer.text).toBe(serialOf(web.cert));
    expect(server.peers).toEqual([serialOf(web.cert)]);
    expect(await c.put({ text: "again" })).toMatchObject({ text: serialOf(web.cert) });
    expect(c.weft.snapshot().tls).toMatchObject({
      identity: [ORDERS],
      insecure: false,
      identityFailures: 0,
      lastIdentityFailure: null,
      tlsFailures: {},
      material: { source: "inline", version: 1, identity: WEB, serial: serialOf(web.cert) },
    });
  });

  it("takes the mesh's default tls for its channels unless it brings its own tls or grpc.credentials", async () => {
    const server = await tlsServer(pki.server, pki.ca);
    const mesh = createMesh({ defaults: { tls: { ca: pki.ca, cert: web.cert, key: web.key, identity: ORDERS } } });
    defer(() => mesh.close());
    const inMesh = scoped(
      grpcClient<EchoMethods>(Echo, { mesh, service: "orders", discovery: staticDiscovery([server.url]) }),
    );
    expect(await inMesh.get({ text: "mesh" })).toMatchObject({ text: serialOf(web.cert) });
    expect(inMesh.weft.snapshot().tls).toMatchObject({ identity: [ORDERS], material: { identity: WEB } });
    // Its own tls wins: here one that expects another identity, so the server is refused.
    const own = scoped(
      grpcClient<EchoMethods>(Echo, {
        mesh,
        service: "orders-own",
        discovery: staticDiscovery([server.url]),
        tls: { ca: pki.ca, cert: web.cert, key: web.key, identity: IMPOSTOR },
      }),
    );
    expect((await failure(own.get({ text: "x" }))).cause).toMatchObject({ code: "WEFT_ERR_IDENTITY" });
    // grpc.credentials win too: no weft TLS on that client's channels.
    const credentialed = scoped(
      grpcClient<EchoMethods>(Echo, {
        mesh,
        service: "orders-credentials",
        discovery: staticDiscovery([server.url]),
        grpc: {
          credentials: grpc.credentials.createSsl(Buffer.from(pki.ca), Buffer.from(web.key), Buffer.from(web.cert)),
        },
      }),
    );
    expect(credentialed.weft.snapshot().tls).toBeNull();
    expect(server.calls).toBe(1);
  });

  it("keeps http:// endpoints plaintext next to tls", async () => {
    const plain = scoped(await startEchoServer());
    const c = echo([plain.url], { tls: { ca: pki.ca, identity: ORDERS } });
    expect(await c.get({ text: "plain" })).toMatchObject({ text: "plain" });
  });

  it("refuses a server with another SPIFFE ID inside the handshake: UNAVAILABLE saying why, one attempt, counted", async () => {
    const server = await tlsServer(impostor);
    const c = echo([server.url], { tls: { ca: pki.ca, identity: ORDERS }, retry: { maxAttempts: 3 } });
    // Get is idempotent: even so, never resent to the server that refused it.
    const error = await failure(c.get({ text: "x" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toBe(`${server.url} presented ${IMPOSTOR}; expected ${ORDERS}`);
    expect(error.cause).toMatchObject({ code: "WEFT_ERR_IDENTITY", endpoint: server.url, presented: [IMPOSTOR] });
    expect(server.calls).toBe(0);
    const snap = c.weft.snapshot();
    expect(snap.counters).toMatchObject({ calls: 1, attempts: 1, failures: 1 });
    expect(snap.tls).toMatchObject({ identityFailures: 1, lastIdentityFailure: { presented: [IMPOSTOR] } });
  });

  it("resends a non-idempotent call an impostor refused to the right server (it was never sent), never to the impostor again", async () => {
    const good = await tlsServer(pki.server);
    const bad = await tlsServer(impostor);
    const c = echo([good.url, bad.url], {
      tls: { ca: pki.ca, identity: ORDERS },
      retry: { maxAttempts: 3 },
      // Round robin: calls keep starting at the impostor, whose failures would steer P2C away.
      balancer: roundRobin(),
      outlier: false,
      breaker: false,
    });
    const perCall: string[][] = [];
    c.weft.events.onAttemptEnd((e) => {
      if (e.attempt === 0) perCall.push([]);
      perCall.at(-1)!.push(`${e.endpoint} ${e.outcome}`);
    });
    for (let i = 0; i < 12; i++) await c.put({ text: `put ${i}` });
    expect(good.calls).toBe(12);
    expect(bad.calls).toBe(0);
    expect(perCall.filter((attempts) => attempts.length === 2).length).toBeGreaterThanOrEqual(5);
    for (const attempts of perCall) {
      // At most one try at the impostor per call, and then the good server.
      expect(attempts.filter((a) => a.startsWith(bad.url))).toHaveLength(attempts.length - 1);
      expect(attempts.length).toBeLessThanOrEqual(2);
      expect(attempts.at(-1)).toBe(`${good.url} success`);
    }
    expect(c.weft.snapshot().tls!.identityFailures).toBeGreaterThan(0);
  });

  it("fails a server whose certificate names another host (no identity configured) as WEFT_ERR_TLS, counted by code", async () => {
    const wrongHost = pki.issue("wrong-host", { sans: "IP:127.0.0.2,DNS:orders.shop.svc", usage: "server" });
    const server = await tlsServer(wrongHost);
    const c = echo([server.url], { tls: { ca: pki.ca } });
    const error = await failure(c.put({ text: "x" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(
      new RegExp(
        `^TLS handshake with ${server.url} failed: the server's certificate does not name this host: .*127\\.0\\.0\\.2`,
      ),
    );
    expect(error.cause).toMatchObject({ code: "WEFT_ERR_TLS", tlsCode: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect(server.calls).toBe(0);
    expect(c.weft.snapshot().tls!.tlsFailures).toEqual({ ERR_TLS_CERT_ALTNAME_INVALID: 1 });
  });

  it("is refused by a server that requires a client certificate when it has none; not resent as never sent", async () => {
    const server = await tlsServer(pki.server, pki.ca);
    const c = echo([server.url], { tls: { ca: pki.ca, identity: ORDERS }, retry: { maxAttempts: 3 } });
    const error = await failure(c.put({ text: "x" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    // grpc-js reports only the text of the failed connection: a TLS alert, no socket error code.
    expect(error.details).toMatch(/certificate required|CERTIFICATE_REQUIRED/i);
    expect(server.calls).toBe(0);
    // Not an error weft can tell was never sent: a Put is not resent.
    expect(c.weft.snapshot().counters).toMatchObject({ calls: 1, attempts: 1 });
  });

  it("after the client's files rotate, new calls present the new certificate while a call in flight on the old channel completes", async () => {
    const first = pki.issue("web-1", { sans: `URI:${WEB}`, usage: "client" });
    const second = pki.issue("web-2", { sans: `URI:${WEB}`, usage: "client" });
    const files = rotatingFiles(pki, first);
    const source = files.source;

    const server = await tlsServer(pki.server, pki.ca);
    const c = echo([server.url], { tls: { source, identity: ORDERS }, timeout: { totalMs: 30_000 } });
    expect((await c.get({ text: "before" })).text).toBe(serialOf(first.cert));

    // A call in flight on the first channel, held by the server until the end.
    const inFlight = c.put({ text: "hold" });
    await until(() => server.calls === 2, "the held call to reach the server");

    // The key first, then its certificate (as a SPIFFE helper writes them): weft applies the pair once it matches.
    writeFileSync(files.key, second.key);
    writeFileSync(files.cert, second.cert);
    await until(() => source.current.version === 2, "the rotated files to apply");
    expect(c.weft.snapshot().tls).toMatchObject({ material: { version: 2, serial: serialOf(second.cert) } });

    // New calls: a new channel, a new connection, the new certificate.
    for (let i = 0; i < 3; i++) expect((await c.put({ text: `after ${i}` })).text).toBe(serialOf(second.cert));
    // The call held on the old channel completes, with the certificate its connection was made with.
    server.release();
    expect((await inFlight).text).toBe(serialOf(first.cert));
    expect(server.peers).toEqual([
      serialOf(first.cert),
      serialOf(first.cert),
      serialOf(second.cert),
      serialOf(second.cert),
      serialOf(second.cert),
    ]);
    expect(c.weft.snapshot().counters).toMatchObject({ failures: 0 });
  });

  it("resends a call that was waiting for the old channel's connection when the material rotated (it never started)", async () => {
    const first = pki.issue("web-3", { sans: `URI:${WEB}`, usage: "client" });
    const second = pki.issue("web-4", { sans: `URI:${WEB}`, usage: "client" });
    const files = rotatingFiles(pki, first);
    const server = await tlsServer(pki.server, pki.ca);
    const proxy = await holdFirstConnection(Number(new URL(server.url).port));
    const c = echo([`https://127.0.0.1:${proxy.port}`], {
      tls: { source: files.source, identity: ORDERS },
      timeout: { totalMs: 10_000 },
      retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 5 } },
    });
    // A Put (not idempotent) queued on a channel whose handshake does not finish.
    const pending = c.put({ text: "queued" });
    pending.catch(() => {}); // awaited below; a failure must not surface first as an unhandled rejection
    await until(() => proxy.connections === 1, "the first channel to connect");
    writeFileSync(files.key, second.key);
    writeFileSync(files.cert, second.cert);
    await until(() => files.source.current.version === 2, "the rotated files to apply");
    // The old channel closed with the call still queued: resent on a new channel, with the new certificate.
    expect((await pending).text).toBe(serialOf(second.cert));
    expect(server.peers).toEqual([serialOf(second.cert)]);
    expect(c.weft.snapshot().counters).toMatchObject({ calls: 1, attempts: 2 });
  });

  it("fails on an expired server certificate with grpc-js's words, as possibly sent (Node refuses it before weft's check runs)", async () => {
    const expired = pki.issue("expired", { sans: `IP:127.0.0.1,URI:${ORDERS}`, usage: "server", expired: true });
    const server = await tlsServer(expired);
    const c = echo([server.url], { tls: { ca: pki.ca, identity: ORDERS }, retry: { maxAttempts: 3 } });
    const error = await failure(c.put({ text: "x" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(/^No connection established\. Last error: .*certificate has expired/);
    expect(server.calls).toBe(0);
    expect(c.weft.snapshot().counters).toMatchObject({ calls: 1, attempts: 1 });
    expect(c.weft.snapshot().tls!.tlsFailures).toEqual({});
  });

  describe("options", () => {
    const urls = ["https://127.0.0.1:1"];
    const base = { service: "orders", discovery: staticDiscovery(urls) };

    it("refuses tls together with grpc.credentials, naming both", () => {
      expect(
        invalidOptionText(() =>
          grpcClient(Echo, { ...base, tls: { ca: pki.ca }, grpc: { credentials: grpc.credentials.createSsl() } }),
        ),
      ).toBe(
        'tls: invalid option tls: got "(with grpc.credentials)"; expected absent when `grpc.credentials` is given: one or the other secures the channels (weft\'s `tls` checks the SPIFFE identity and rotates)',
      );
    });

    it("words a bad tls value as createClient does", () => {
      const bad: unknown[] = [
        "x",
        { nope: 1 },
        { identity: "http://x" },
        { identity: [] },
        { ca: "not a pem" },
        { insecure: true, identity: "*" },
        { source: {}, identity: ORDERS },
      ];
      for (const tls of bad) {
        const asClient = invalidOptionText(() => createClient({ ...base, tls: tls as never }));
        expect(invalidOptionText(() => grpcClient(Echo, { ...base, tls: tls as never }))).toBe(asClient);
      }
    });
  });
});

/**
 * Certificate rotation under load, both ends: a weft client (mTLS, SPIFFE identity check) calls a
 * `weft/server` over https at 200 calls/s while both sides' certificates are replaced three times
 * from files — the server's the way cert-manager does it (a `..data` symlink swapped to a new
 * directory), the client's the way a SPIFFE helper might (key and certificate written one after
 * the other, so for a moment the pair does not match; once, the certificate first half-written).
 *
 * No call may fail; every refused candidate is counted and warned about while the last good pair
 * keeps serving; and every connection carries, on both sides, the certificates that were current
 * when it was made — the server records each connection's own and peer serials, and which version
 * each side held when the connection was dialed and accepted (not when its handshake finished: a
 * busy machine can delay that past the next rotation, which made an earlier timing margin flaky).
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import type { Socket } from "node:net";
import tls, { type PeerCertificate, type TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import { createClient, staticDiscovery, tlsFiles } from "weft";
import { inbound, inboundContext } from "weft/server";
import { hasOpenssl, makePki, type Pem } from "../helpers/certs.js";
import { defer, listening, scoped } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

const ORDERS = "spiffe://example.org/ns/shop/sa/orders";
const WEB = "spiffe://example.org/ns/shop/sa/web";
const RATE_PER_SECOND = 200;
const ROTATIONS = 3;
const ROTATE_EVERY_MS = 900;
interface Connection {
  /** The client's local port: joins the server's record to the client's. */
  readonly port: number;
  /** The server's material version current when it accepted the connection (the one its TLS socket was made with). */
  readonly serverVersion: number;
  readonly serverSerial: string;
  readonly clientSerial: string;
}

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

describe.skipIf(!hasOpenssl)("certificate rotation under load", () => {
  it("replaces both sides' certificates 3 times at 200 calls/s: 0 failed calls, new connections use the new certificates", async () => {
    const pki = makePki();
    defer(async () => pki.close());
    const issueServer = (n: number): Pem =>
      pki.issue(`orders-${n}`, { sans: `IP:127.0.0.1,URI:${ORDERS}`, usage: "server" });
    const issueClient = (n: number): Pem => pki.issue(`web-${n}`, { sans: `URI:${WEB}`, usage: "client" });

    // Server files, cert-manager's layout: tls.crt → ..data/tls.crt, ..data → ..v0.
    const serverDir = join(pki.dir, "server-secret");
    mkdirSync(serverDir);
    const writeServerVersion = (n: number, pem: Pem): void => {
      const dir = join(serverDir, `..v${n}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "tls.crt"), pem.cert);
      writeFileSync(join(dir, "tls.key"), pem.key);
      writeFileSync(join(dir, "ca.crt"), pki.ca);
      // The atomic swap: a new symlink renamed over ..data.
      symlinkSync(`..v${n}`, join(serverDir, `..data_tmp`));
      renameSync(join(serverDir, `..data_tmp`), join(serverDir, "..data"));
    };
    const serverPems = [issueServer(0)];
    writeServerVersion(0, serverPems[0]!);
    for (const f of ["tls.crt", "tls.key", "ca.crt"]) symlinkSync(join("..data", f), join(serverDir, f));

    // Client files, written in place.
    const clientDir = join(pki.dir, "client-svid");
    mkdirSync(clientDir);
    const clientPems = [issueClient(0)];
    writeFileSync(join(clientDir, "svid.pem"), clientPems[0]!.cert);
    writeFileSync(join(clientDir, "svid_key.pem"), clientPems[0]!.key);
    writeFileSync(join(clientDir, "bundle.pem"), pki.ca);

    const serverWarnings: string[] = [];
    const clientWarnings: string[] = [];
    const serverTls = tlsFiles({
      cert: join(serverDir, "tls.crt"),
      key: join(serverDir, "tls.key"),
      ca: join(serverDir, "ca.crt"),
      pollMs: 200,
      onWarning: (m) => serverWarnings.push(m),
    });
    const clientTls = tlsFiles({
      cert: join(clientDir, "svid.pem"),
      key: join(clientDir, "svid_key.pem"),
      ca: join(clientDir, "bundle.pem"),
      pollMs: 200,
      onWarning: (m) => clientWarnings.push(m),
    });
    defer(async () => {
      serverTls.close();
      clientTls.close();
    });

    const ib = inbound({ service: "orders", onWarning: () => {}, tls: { source: serverTls } });
    defer(() => ib.close());
    const connections: Connection[] = [];
    const httpServer = https.createServer(
      ib.tlsOptions(),
      ib.handler((req, res) => {
        req.resume();
        req.on("end", () => res.end(String(inboundContext()?.identity?.id)));
      }),
    );
    // Connections churn as they do behind a real load balancer: a new one every 40 requests.
    httpServer.maxRequestsPerSocket = 40;
    // Which material each connection was made with, on both sides, read when it was made — not
    // when its handshake finished, which a busy machine can delay past the next rotation.
    const acceptedWith = new Map<number, number>();
    httpServer.on("connection", (socket: Socket) => {
      // Node made this connection's TLS socket with the server's current context in this same tick.
      acceptedWith.set(socket.remotePort ?? -1, serverTls.current.version);
    });
    httpServer.on("secureConnection", (socket: TLSSocket) => {
      const port = socket.remotePort ?? -1;
      connections.push({
        port,
        serverVersion: acceptedWith.get(port) ?? -1,
        serverSerial: (socket.getCertificate() as PeerCertificate | null)?.serialNumber ?? "",
        clientSerial: socket.getPeerCertificate().serialNumber,
      });
    });
    // The client: weft's connector reads the client's current material and calls tls.connect in
    // one synchronous step, so the version current when tls.connect is called is the one dialed.
    const dialedWith = new Map<number, number>();
    const tlsConnect = tls.connect;
    tls.connect = ((...args: Parameters<typeof tls.connect>) => {
      const version = clientTls.current.version;
      const socket = tlsConnect(...args);
      socket.once("secureConnect", () => dialedWith.set(socket.localPort ?? -1, version));
      return socket;
    }) as typeof tls.connect;
    defer(async () => {
      tls.connect = tlsConnect;
    });
    ib.attach(httpServer);
    const url = `https://127.0.0.1:${await listening(httpServer)}`;
    const client = scoped(
      createClient({
        service: "orders",
        discovery: staticDiscovery([url]),
        tls: { source: clientTls, identity: ORDERS },
      }),
    );

    // The load: an open loop at 200 calls/s, GETs and non-idempotent POSTs.
    const results: { ok: boolean; detail: string }[] = [];
    const pending: Promise<void>[] = [];
    const loadMs = ROTATE_EVERY_MS * (ROTATIONS + 1) + 400;
    const loadStart = performance.now();
    const load = (async () => {
      let sent = 0;
      while (performance.now() - loadStart < loadMs) {
        const due = Math.floor(((performance.now() - loadStart) * RATE_PER_SECOND) / 1000);
        while (sent < due) {
          const post = sent % 5 === 0;
          const call = post
            ? client.request({ method: "POST", path: "/pay", body: "x".repeat(64) })
            : client.request({ path: `/order/${sent}` });
          pending.push(
            call.then(
              async (res) => {
                const body = await res.text();
                results.push({ ok: res.status === 200 && body === WEB, detail: `${res.status} ${body}` });
              },
              (error: unknown) => void results.push({ ok: false, detail: String(error) }),
            ),
          );
          sent++;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    for (let n = 1; n <= ROTATIONS; n++) {
      await until(() => performance.now() - loadStart >= n * ROTATE_EVERY_MS, `rotation ${n}'s time`, 10_000, 5);
      const serverPem = issueServer(n);
      const clientPem = issueClient(n);
      serverPems.push(serverPem);
      clientPems.push(clientPem);
      writeServerVersion(n, serverPem);
      if (n === 2) {
        // Half-written first: refused, the old pair keeps serving.
        writeFileSync(join(clientDir, "svid.pem"), clientPem.cert.slice(0, Math.floor(clientPem.cert.length / 2)));
        await until(() => clientTls.snapshot().rejected >= 1, "the half-written certificate to be refused", 5000);
      }
      // Key first, certificate after: for a moment the pair does not match.
      writeFileSync(join(clientDir, "svid_key.pem"), clientPem.key);
      await new Promise((resolve) => setTimeout(resolve, 120));
      writeFileSync(join(clientDir, "svid.pem"), clientPem.cert);
      await until(
        () => serverTls.current.version === n + 1 && clientTls.current.version === n + 1,
        `rotation ${n} to apply on both sides`,
        5000,
      );
    }

    await load;
    await Promise.all(pending);

    const failed = results.filter((r) => !r.ok);
    const serials = {
      server: serverPems.map((p) => serialOf(p.cert)),
      client: clientPems.map((p) => serialOf(p.cert)),
    };
    console.log(
      `rotation under load: ${JSON.stringify({
        calls: results.length,
        failed: failed.slice(0, 5),
        connections: connections.length,
        perVersion: serials.server.map(
          (s, i) => connections.filter((c) => c.serverSerial === s && c.clientSerial === serials.client[i]).length,
        ),
        clientRejected: clientTls.snapshot().rejected,
        clientWarnings: clientWarnings.length,
      })}`,
    );

    expect(results.length).toBeGreaterThanOrEqual(RATE_PER_SECOND * (loadMs / 1000) * 0.9);
    expect(failed).toEqual([]);
    // Both sides moved through every version.
    expect(serverTls.current.version).toBe(ROTATIONS + 1);
    expect(clientTls.current.version).toBe(ROTATIONS + 1);
    expect(ib.snapshot().tls!.material.serial).toBe(serials.server.at(-1));
    expect(client.snapshot().tls!.material).toMatchObject({
      source: "files",
      version: ROTATIONS + 1,
      serial: serials.client.at(-1),
    });
    // The refused candidates: the half-written certificate, and a key written before its certificate (at least once).
    expect(clientTls.snapshot().rejected).toBeGreaterThanOrEqual(1);
    expect(clientWarnings.some((w) => /half-written|no complete PEM block|outside its PEM blocks/.test(w))).toBe(true);
    expect(clientWarnings.every((w) => /refused new TLS material/.test(w))).toBe(true);
    expect(serverWarnings).toEqual([]);
    // Every connection carries the certificates current when it was made, on both sides (version
    // v is serials[v - 1]), and every version served some connections.
    for (const c of connections) {
      const clientVersion = dialedWith.get(c.port);
      expect(clientVersion, `the client's record of the connection from port ${c.port}`).toBeGreaterThan(0);
      expect(serials.server.indexOf(c.serverSerial) + 1, "server certificate version").toBe(c.serverVersion);
      expect(serials.client.indexOf(c.clientSerial) + 1, "client certificate version").toBe(clientVersion);
    }
    for (let v = 1; v <= ROTATIONS + 1; v++) {
      expect(
        connections.filter((c) => c.serverSerial === serials.server[v - 1]).length,
        `connections with server version ${v}`,
      ).toBeGreaterThan(0);
      expect(
        connections.filter((c) => c.clientSerial === serials.client[v - 1]).length,
        `connections with client version ${v}`,
      ).toBeGreaterThan(0);
    }
    // Every connection carried a certificate that was issued here (never a half-written one).
    for (const c of connections) {
      expect(serials.server).toContain(c.serverSerial);
      expect(serials.client).toContain(c.clientSerial);
    }
  }, 30_000);

  it("closes a keep-alive connection made with the old server certificate after its next answer", async () => {
    const pki = makePki();
    defer(async () => pki.close());
    const dir = join(pki.dir, "one-conn");
    mkdirSync(dir);
    const first = pki.issue("one-a", { sans: `IP:127.0.0.1,URI:${ORDERS}`, usage: "server" });
    const second = pki.issue("one-b", { sans: `IP:127.0.0.1,URI:${ORDERS}`, usage: "server" });
    writeFileSync(join(dir, "tls.crt"), first.cert);
    writeFileSync(join(dir, "tls.key"), first.key);
    const source = tlsFiles({
      cert: join(dir, "tls.crt"),
      key: join(dir, "tls.key"),
      pollMs: 60_000,
      onWarning: () => {},
    });
    defer(async () => source.close());
    const ib = inbound({ service: "orders", onWarning: () => {}, tls: { source } });
    defer(() => ib.close());
    const served: string[] = [];
    const httpServer = https.createServer(
      ib.tlsOptions(),
      ib.handler((req, res) => {
        served.push(
          (req.socket as TLSSocket).getCertificate() === null
            ? ""
            : ((req.socket as TLSSocket).getCertificate() as PeerCertificate).serialNumber,
        );
        res.end("ok");
      }),
    );
    ib.attach(httpServer);
    const url = `https://127.0.0.1:${await listening(httpServer)}`;
    const client = scoped(
      createClient({ service: "orders", discovery: staticDiscovery([url]), tls: { ca: pki.ca, identity: ORDERS } }),
    );
    const call = async (): Promise<string | undefined> => {
      const res = await client.request({ path: "/" });
      await res.text();
      return res.headers.connection as string | undefined;
    };
    expect(await call()).toBe("keep-alive");
    writeFileSync(join(dir, "tls.key"), second.key);
    writeFileSync(join(dir, "tls.crt"), second.cert);
    await (source as unknown as { reload(): Promise<void> }).reload();
    expect(source.current.serial).toBe(serialOf(second.cert));
    // The open connection (old certificate) answers once more, closing; the next call reconnects with the new one.
    expect(await call()).toBe("close");
    expect(await call()).toBe("keep-alive");
    expect(served).toEqual([serialOf(first.cert), serialOf(first.cert), serialOf(second.cert)]);
  });
});

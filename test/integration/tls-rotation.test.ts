/**
 * Certificate rotation under load, both ends: a weft client (mTLS, SPIFFE identity check) calls a
 * `weft/server` over https at 200 calls/s while both sides' certificates are replaced three times
 * from files — the server's the way cert-manager does it (a `..data` symlink swapped to a new
 * directory), the client's the way a SPIFFE helper might (key and certificate written one after
 * the other, so for a moment the pair does not match; once, the certificate first half-written).
 *
 * No call may fail; every refused candidate is counted and warned about while the last good pair
 * keeps serving; and connections made after a rotation applied carry the new certificates on
 * both sides — checked at the server, which records each connection's own and peer serials.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import type { PeerCertificate, TLSSocket } from "node:tls";
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
/** A connection whose handshake finished this long after a rotation applied must carry the new certificate. */
const MARGIN_MS = 250;

interface Connection {
  readonly at: number;
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
    httpServer.on("secureConnection", (socket: TLSSocket) => {
      connections.push({
        at: Date.now(),
        serverSerial: (socket.getCertificate() as PeerCertificate | null)?.serialNumber ?? "",
        clientSerial: socket.getPeerCertificate().serialNumber,
      });
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

    /** When each rotation had applied on both sides (wall-clock ms, as the connections' `at`). */
    const applied: number[] = [];
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
      applied.push(Date.now());
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
    // New connections use the new certificates, on both sides.
    for (let n = 1; n <= ROTATIONS; n++) {
      const after = connections.filter(
        (c) => c.at > applied[n - 1]! + MARGIN_MS && (n === ROTATIONS || c.at < applied[n]!),
      );
      expect(after.length, `connections after rotation ${n}`).toBeGreaterThan(0);
      for (const c of after) {
        expect(serials.server.indexOf(c.serverSerial), "server certificate version").toBeGreaterThanOrEqual(n);
        expect(serials.client.indexOf(c.clientSerial), "client certificate version").toBeGreaterThanOrEqual(n);
      }
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

/**
 * The upstream for the TLS bench (`tls.ts`), run as a child process like `server.ts`, so that the
 * server's share of every handshake and of every record's encryption runs on its own core.
 *
 * `--mode=plain` is `server.ts`'s `node:http` server; `--mode=tls` an `https` server with the
 * certificate of `makePki()` (test/helpers/certs.ts: IP SAN 127.0.0.1, URI SAN
 * spiffe://example.org/ns/shop/sa/orders); `--mode=mtls` the same with `requestCert` and
 * `rejectUnauthorized` against the test CA, so every client must present a certificate from it.
 * `--pki=<dir>` is `makePki()`'s directory (`server.key`, `server.crt`, `ca.crt`): the PEMs are read
 * from the files it wrote, never passed on a command line. `--resume=off` refuses TLS session
 * resumption (`SSL_OP_NO_TICKET`, and no session cache: Node's server cache only works with
 * `newSession` listeners, which this server does not add), so every handshake is a full one.
 *
 * Every request is answered with a 2-byte body, keep-alive (60 s, longer than any row), unless the
 * request said `connection: close`. What it counts — TCP connections accepted, TLS handshakes
 * completed (`secureConnection`), how many of those resumed a session, client certificates the
 * server verified, requests, and its own CPU time — is served as JSON at `GET /__stats` on a second,
 * plain-HTTP port, so reading the counters makes no handshake of its own. It prints
 * `PORTS <port>,<stats port>` once both listen on 127.0.0.1, and stops with its parent
 * (`stopWithParent`: SIGTERM, or its stdin closing).
 *
 * Run alone: `npx tsx bench/tls-server.ts --mode=mtls --pki=/tmp/weft-pki-…`.
 */
import { constants } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { stopWithParent } from "./child.js";

export type TlsServerMode = "plain" | "tls" | "mtls";

/** What `GET /__stats` answers: counters since the child started. */
export interface TlsServerStats {
  readonly mode: TlsServerMode;
  /** TCP connections accepted on the bench port. */
  readonly connections: number;
  /** TLS handshakes completed (`secureConnection`); 0 in plain mode. */
  readonly handshakes: number;
  /** Of those, resumed from a session ticket (`isSessionReused()`): an abbreviated handshake. */
  readonly resumed: number;
  /** Of those, with a client certificate the server verified against the CA (mTLS). */
  readonly clientCerts: number;
  /** Requests answered on the bench port. */
  readonly requests: number;
  /** This process's CPU time so far (user + system), µs. */
  readonly cpuUs: number;
}

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const mode = (args.get("mode") ?? "plain") as TlsServerMode;
if (!["plain", "tls", "mtls"].includes(mode))
  throw new Error(`tls-server: --mode must be plain, tls or mtls, got ${mode}`);
const resume = args.get("resume") !== "off";

const BODY = Buffer.from("ok");
const HEADERS = { "content-type": "text/plain", "content-length": String(BODY.length) };
const counts = { connections: 0, handshakes: 0, resumed: 0, clientCerts: 0, requests: 0 };

const app: http.RequestListener = (req, res) => {
  req.resume();
  counts.requests++;
  res.writeHead(200, HEADERS);
  res.end(BODY);
};

function makeServer(): http.Server {
  if (mode === "plain") return http.createServer(app);
  const dir = args.get("pki");
  if (dir === undefined)
    throw new Error("tls-server: --pki=<dir written by makePki()> is required with --mode=tls|mtls");
  return https.createServer(
    {
      key: readFileSync(join(dir, "server.key"), "utf8"),
      cert: readFileSync(join(dir, "server.crt"), "utf8"),
      ...(mode === "mtls"
        ? { ca: readFileSync(join(dir, "ca.crt"), "utf8"), requestCert: true, rejectUnauthorized: true }
        : {}),
      ...(resume ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
    },
    app,
  );
}

const server = makeServer();
server.on("connection", (_socket: Socket) => counts.connections++);
server.on("secureConnection", (socket: TLSSocket) => {
  counts.handshakes++;
  if (socket.isSessionReused()) counts.resumed++;
  if (socket.authorized && mode === "mtls") counts.clientCerts++;
});
// Longer than any bench row, so no connection is closed (and re-opened) in the middle of a row.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxRequestsPerSocket = 0;

const stats = http.createServer((req, res) => {
  req.resume();
  const cpu = process.cpuUsage();
  const body: TlsServerStats = { mode, ...counts, cpuUs: cpu.user + cpu.system };
  res.writeHead(req.url === "/__stats" ? 200 : 404, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify(body));
});

await Promise.all([server, stats].map((s) => new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))));
process.stdout.write(`PORTS ${(server.address() as AddressInfo).port},${(stats.address() as AddressInfo).port}\n`);

stopWithParent(() => {
  server.closeAllConnections();
  stats.closeAllConnections();
  server.close(() => stats.close(() => process.exit(0)));
});

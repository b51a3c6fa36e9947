/**
 * The upstream for the HTTP/2 bench (`http2.ts`), run as a child process like `server.ts`, so that
 * the server's work does not share an event loop (or a core) with the client being measured.
 *
 * Two `node:http2` servers on 127.0.0.1, port 0: h2c (prior knowledge) and TLS (ALPN h2) with the
 * certificate of `makePki()` (test/helpers/certs.ts), read from `--pki=<dir>` (`server.key`,
 * `server.crt`), never from a command line. Every stream is answered with a 2-byte body, as
 * `server.ts` answers HTTP/1.1, except `GET /big`: 1 MiB. It counts the sessions (connections) each accepted, served as JSON
 * at `GET /__stats` on a third, plain HTTP/1.1 port (`{ sessions: [h2c, tls], streams, cpuUs }`),
 * so the bench can say how many connections each row used. It prints `PORTS <h2c>,<tls>,<stats>`
 * once all listen, and stops with its parent (`stopWithParent`).
 *
 * Run alone: `npx tsx bench/http2-server.ts --pki=/tmp/weft-pki-…`.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { stopWithParent } from "./child.js";

/** What `GET /__stats` answers: counters since the child started. */
export interface Http2ServerStats {
  /** Sessions accepted by the h2c and the TLS server. */
  readonly sessions: readonly [number, number];
  readonly streams: number;
  /** This process's CPU time so far (user + system), µs. */
  readonly cpuUs: number;
}

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const dir = args.get("pki");
if (dir === undefined) throw new Error("http2-server: --pki=<dir written by makePki()> is required");

const BODY = Buffer.from("ok");
const HEADERS = { ":status": 200, "content-type": "text/plain", "content-length": String(BODY.length) };
/** `GET /big`: 1 MiB, for the bulk rows (flow-control windows decide their speed). */
const BIG = Buffer.alloc(1024 * 1024, 120);
const BIG_HEADERS = {
  ":status": 200,
  "content-type": "application/octet-stream",
  "content-length": String(BIG.length),
};
const counts = { sessions: [0, 0] as [number, number], streams: 0 };

const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
  counts.streams++;
  stream.on("error", () => {});
  // Drain any request body, then answer.
  stream.resume();
  const big = headers[":path"] === "/big";
  stream.respond(big ? BIG_HEADERS : HEADERS);
  stream.end(big ? BIG : BODY);
};

// Node's default (10 MB a session) refuses new streams with ENHANCE_YOUR_CALM while 1 MiB answers
// are in flight: the bench measures the client, so the server gets room for them.
const maxSessionMemory = 64;
const h2c = http2.createServer({ maxSessionMemory });
const secure = http2.createSecureServer({
  maxSessionMemory,
  key: readFileSync(join(dir, "server.key"), "utf8"),
  cert: readFileSync(join(dir, "server.crt"), "utf8"),
});
for (const [index, server] of [
  [0, h2c],
  [1, secure],
] as const) {
  server.on("stream", onStream);
  server.on("session", (session) => {
    counts.sessions[index]++;
    session.on("error", () => {});
  });
}

const stats = http.createServer((req, res) => {
  req.resume();
  const cpu = process.cpuUsage();
  const body: Http2ServerStats = { ...counts, cpuUs: cpu.user + cpu.system };
  res.writeHead(req.url === "/__stats" ? 200 : 404, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify(body));
});

const servers = [h2c, secure, stats] as const;
await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))));
process.stdout.write(`PORTS ${servers.map((s) => (s.address() as AddressInfo).port).join(",")}\n`);

stopWithParent(() => {
  stats.closeAllConnections();
  h2c.close();
  secure.close();
  stats.close(() => process.exit(0));
});

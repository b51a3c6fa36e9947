/**
 * The upstream for the loopback rows of `inbound-overhead.ts`: the same `node:http` server as
 * `server.ts` (keep-alive, a 2-byte body), plain or through `inbound()`, one mode per process —
 * so the plain server never runs with AsyncLocalStorage enabled by an `inbound()` in the same
 * process.
 *
 * `--mode=plain` (default): `http.createServer(app)`; `--mode=als`: the same, with
 * AsyncLocalStorage enabled (a context entered once); `--mode=inbound`: `http.createServer(
 * inbound({ service }).handler(app))`, default options; `--mode=adaptive`: the same with
 * `shed: { adaptive: true }`. `GET /__cpu` answers this process's `process.cpuUsage()` (µs), so
 * the bench can count server CPU per request. Prints `PORT <n>` once listening; exits when its
 * stdin closes or on SIGTERM.
 *
 * Run alone: `npx tsx bench/inbound-server.ts --mode=inbound`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { runWithContext } from "weft";
import { inbound } from "weft/server";
import { stopWithParent } from "./child.js";

const BODY = Buffer.from("ok");
const HEADERS = { "content-type": "text/plain", "content-length": String(BODY.length) };

const mode = /^--mode=(\w+)$/.exec(process.argv[2] ?? "")?.[1] ?? "plain";
if (!["plain", "als", "inbound", "adaptive"].includes(mode))
  throw new Error(`inbound-server: --mode must be plain, als, inbound or adaptive, got ${mode}`);
// `als`: the plain server in a process where a request context was entered once, as inbound()
// does on its first request — AsyncLocalStorage, and so Node's async hooks, on for good.
if (mode === "als") runWithContext({}, () => {});

const app = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  req.resume();
  res.writeHead(200, HEADERS);
  res.end(BODY);
};
const server =
  mode === "plain" || mode === "als"
    ? null
    : inbound({ service: "bench-inbound", ...(mode === "adaptive" ? { shed: { adaptive: true } } : {}) });
const handler = server === null ? app : server.handler(app);

const httpServer = http.createServer((req, res) => {
  if (req.url === "/__cpu") {
    res.end(JSON.stringify(process.cpuUsage()));
    return;
  }
  handler(req, res);
});
// Longer than any bench row, so no connection is closed (and re-opened) in the middle of a row.
httpServer.keepAliveTimeout = 60_000;
httpServer.headersTimeout = 65_000;
httpServer.maxRequestsPerSocket = 0;

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${(httpServer.address() as AddressInfo).port}\n`);
});

stopWithParent(() => {
  void server?.close();
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
});

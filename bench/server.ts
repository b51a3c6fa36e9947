/**
 * The upstream for the loopback throughput bench, run as a child process so that the server's
 * work does not share an event loop with the client being measured (on a 2-core machine client
 * and server then each get a core, as two services would).
 *
 * A plain `node:http` server on 127.0.0.1, port 0, keep-alive, answering every request with a
 * 2-byte body (`GET /big`: 1 MiB). It prints `PORT <n>` on stdout once listening, and exits when its stdin closes
 * (the parent ended, however it ended) or on SIGTERM — so it cannot outlive the bench.
 *
 * Run alone: `npx tsx bench/server.ts` (prints the port; Ctrl-D or Ctrl-C stops it).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { stopWithParent } from "./child.js";

const BODY = Buffer.from("ok");
const HEADERS = { "content-type": "text/plain", "content-length": String(BODY.length) };
/** `GET /big`: 1 MiB, for the bulk rows (what reading a large body costs). */
const BIG = Buffer.alloc(1024 * 1024, 120);
const BIG_HEADERS = { "content-type": "application/octet-stream", "content-length": String(BIG.length) };

const server = http.createServer((req, res) => {
  // Drain any request body, then answer; GETs without a body go straight to `end`.
  req.resume();
  const big = req.url === "/big";
  res.writeHead(200, big ? BIG_HEADERS : HEADERS);
  res.end(big ? BIG : BODY);
});
// Longer than any bench row, so no connection is closed (and re-opened) in the middle of a row.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxRequestsPerSocket = 0;

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});

stopWithParent(() => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

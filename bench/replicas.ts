/**
 * Upstream replicas for the resilience benches (storm.ts, tail.ts), run as one child process
 * holding several `node:http` servers on 127.0.0.1 (port 0 each) — several replicas without
 * several Node processes competing for the 2 cores.
 *
 * Two behaviours, chosen by flags:
 * - `--status=503`: every request is answered at once with a 503 (no `Retry-After`: a server
 *   that is drowning rarely says when to come back) — a total outage, for the retry storm.
 * - `--fast-ms=2 --slow-ms=100 --slow-fraction=0.01 [--seed=n]`: every request is answered with
 *   200 after `fast-ms`, except a random `slow-fraction` of them (drawn per request, from a
 *   seeded generator) answered after `slow-ms` — the Tail at Scale's rare slow replies, which
 *   hit any replica at any time, so no balancer can route around them and only a hedge helps.
 *   Paths starting with `/fast` are never slow (the tail bench's reference row).
 *
 * Each replica counts what arrives; `GET /__stats` on any port answers the counts of all of them
 * (and is not counted itself), so the bench measures load where it lands: at the server.
 *
 * It prints `PORTS <a>,<b>,…` once listening, and exits when its stdin closes (the parent ended,
 * however it ended) or on SIGTERM. Run alone:
 * `npx tsx bench/replicas.ts --replicas=4 --fast-ms=2 --slow-ms=100 --slow-fraction=0.01`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const flags = new Map<string, string>();
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(arg);
  if (m === null) throw new Error(`replicas: unknown argument ${JSON.stringify(arg)}`);
  flags.set(m[1] as string, m[2] as string);
}
const num = (name: string, fallback: number): number => {
  const value = Number(flags.get(name) ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`replicas: --${name} must be a number ≥ 0`);
  return value;
};
const replicas = Math.max(1, Math.round(num("replicas", 1)));
const status = Math.round(num("status", 200));
const fastMs = num("fast-ms", 0);
const slowMs = num("slow-ms", 0);
const slowFraction = num("slow-fraction", 0);

/** mulberry32: a seeded generator, so the slow draws do not depend on Math.random's state. */
let seed = Math.round(num("seed", 42)) >>> 0;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const requests = new Array<number>(replicas).fill(0);
const slow = new Array<number>(replicas).fill(0);
const aborted = new Array<number>(replicas).fill(0);
const connections = new Array<number>(replicas).fill(0);
const BODY = Buffer.from(status === 200 ? "ok" : "unavailable");
const HEADERS = { "content-type": "text/plain", "content-length": String(BODY.length) };

function handler(index: number): http.RequestListener {
  return (req, res) => {
    req.resume();
    if (req.url === "/__stats") {
      res.writeHead(200, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ requests, slow, aborted, connections }));
      return;
    }
    requests[index]!++;
    if (status !== 200) {
      res.writeHead(status, HEADERS);
      res.end(BODY);
      return;
    }
    // `/fast…` is never slow: the reference for how fast the tail can be on this machine.
    const isSlow = random() < slowFraction && !(req.url ?? "").startsWith("/fast");
    if (isSlow) slow[index]!++;
    const timer = setTimeout(() => {
      res.writeHead(200, HEADERS);
      res.end(BODY);
    }, isSlow ? slowMs : fastMs);
    // The client gave up (a hedge that lost, say): count it, and write nothing to a dead socket.
    res.once("close", () => {
      if (!res.writableFinished) {
        clearTimeout(timer);
        aborted[index]!++;
      }
    });
  };
}

const servers = Array.from({ length: replicas }, (_, i) => {
  const server = http.createServer(handler(i));
  server.on("connection", () => connections[i]!++);
  // Longer than any bench row, so no idle keep-alive connection is closed in the middle of one.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.maxRequestsPerSocket = 0;
  return server;
});

await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))));
process.stdout.write(`PORTS ${servers.map((s) => (s.address() as AddressInfo).port).join(",")}\n`);

function stop(): void {
  let open = servers.length;
  for (const s of servers) {
    s.closeAllConnections();
    s.close(() => {
      if (--open === 0) process.exit(0);
    });
  }
  // Whatever still holds the loop (a slow reply's timer), do not outlive the parent by more than a moment.
  setTimeout(() => process.exit(0), 500).unref();
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();

/**
 * Upstream replicas for the resilience and balancing benches (storm.ts, tail.ts, balancers.ts),
 * run as one child process holding several `node:http` servers on 127.0.0.1 (port 0 each) —
 * several replicas without several Node processes competing for the 2 cores.
 *
 * Three behaviours, chosen by flags:
 * - `--status=503`: every request is answered at once with a 503 (no `Retry-After`: a server
 *   that is drowning rarely says when to come back) — a total outage, for the retry storm.
 * - `--fast-ms=2 --slow-ms=100 --slow-fraction=0.01 [--seed=n]`: every request is answered with
 *   200 after `fast-ms`, except a random `slow-fraction` of them (drawn per request, from a
 *   seeded generator) answered after `slow-ms` — the Tail at Scale's rare slow replies, which
 *   hit any replica at any time, so no balancer can route around them and only a hedge helps.
 *   Paths starting with `/fast` are never slow (the tail bench's reference row).
 * - `--median-ms=2 --sigma=0.6 [--seed=n]`: every request is answered with 200 after a delay drawn
 *   per request from a log-normal distribution (median `median-ms`, shape `sigma`; for 2 ms and
 *   0.6: p90 4.3 ms, p99 8.1 ms, p99.9 12.8 ms), rounded to a whole ms (Node's timer
 *   resolution; 0 answers on the next timer tick), times the replica's slow-down factor — 1 until
 *   `GET /__control?replica=<i>&factor=<f>` sets it (the balancing bench turns one replica 20×
 *   slower for the middle third of a row, then back to 1). The control request answers the
 *   factors as JSON and is not counted.
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
import { stopWithParent } from "./child.js";

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
/** Log-normal mode when set: the median delay, ms, and the shape (σ of the underlying normal). */
const medianMs = flags.has("median-ms") ? num("median-ms", 0) : undefined;
const sigma = num("sigma", 0.6);

/** mulberry32: a seeded generator, so the slow draws do not depend on Math.random's state. */
let seed = Math.round(num("seed", 42)) >>> 0;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** A standard normal draw (Box–Muller, from the seeded generator). */
function normal(): number {
  const u = 1 - random(); // (0, 1]: log(u) is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Per-replica slow-down factor (log-normal mode), set over `/__control`. */
const factors = new Array<number>(replicas).fill(1);
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
    if (req.url?.startsWith("/__control?") === true) {
      const query = new URLSearchParams(req.url.slice("/__control?".length));
      const target = Number(query.get("replica"));
      const factor = Number(query.get("factor"));
      const ok = Number.isInteger(target) && target >= 0 && target < replicas && factor > 0 && Number.isFinite(factor);
      if (ok) factors[target] = factor;
      res.writeHead(ok ? 200 : 400, { "content-type": "application/json", connection: "close" });
      res.end(
        JSON.stringify(ok ? { factors } : { error: "expected /__control?replica=<index>&factor=<positive number>" }),
      );
      return;
    }
    requests[index]!++;
    if (status !== 200) {
      res.writeHead(status, HEADERS);
      res.end(BODY);
      return;
    }
    let delayMs: number;
    if (medianMs !== undefined) {
      // Log-normal mode: a drawn delay times this replica's slow-down factor ("slow" counts the
      // requests answered while the factor was above 1).
      const factor = factors[index] as number;
      if (factor > 1) slow[index]!++;
      delayMs = Math.min(60_000, Math.round(medianMs * Math.exp(sigma * normal()) * factor));
    } else {
      // `/fast…` is never slow: the reference for how fast the tail can be on this machine.
      const isSlow = random() < slowFraction && !(req.url ?? "").startsWith("/fast");
      if (isSlow) slow[index]!++;
      delayMs = isSlow ? slowMs : fastMs;
    }
    const timer = setTimeout(() => {
      res.writeHead(200, HEADERS);
      res.end(BODY);
    }, delayMs);
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
}

stopWithParent(stop);

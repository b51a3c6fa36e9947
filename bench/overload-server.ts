/**
 * The server of the overload bench (overload.ts), run as a child process (child.ts starts it):
 * one `node:http` server on 127.0.0.1 whose handler awaits a simulated downstream resource
 * (overload-resource.ts) — `--slots` parallel slots × `--service-ms` each, FIFO beyond — so its
 * capacity is fixed and known (4 × 10 ms = 400 req/s) and latency grows when it admits more than
 * it can work on.
 *
 * Modes (`--mode=`):
 * - `plain`: `node:http` alone, no weft/server. Every request is queued and worked, even when its
 *   caller has gone away — what a naive server does. The collapse baseline.
 * - `fixed`: `inbound({ shed: { limit: --limit } })` around the same handler.
 * - `adaptive`: `inbound({ shed: { adaptive: true } })`; `--shed=<json>` passes other adaptive
 *   options (`{"adaptive":true,"minRttWindowMs":5000}`) for experiments.
 * In the inbound modes the handler also asks, when its request reaches the head of the resource's
 * queue, whether anyone still wants it — `inboundContext().aborted` (the caller went away) or
 * `remainingMs() <= 0` (the caller's `x-weft-timeout-ms` has run out) — and drops it without
 * working if not. Those are weft/server features: a plain `node:http` server knows neither.
 *
 * `GET /__stats` (answered before weft/server and the resource, never shed, not counted) returns
 * what the server saw since the last `GET /__stats?reset=1`: answers and their queue waits, work
 * done for callers already gone (`wasted`), work dropped (`skipped`), the queue now, the
 * admission snapshot and, every `--sample-ms` (200), a timeline of the adaptive controller's limit,
 * minRtt and sampleRtt. It prints `PORT <n>` once listening and exits when its stdin closes or on
 * SIGTERM (child.ts).
 *
 * Run alone: `npx tsx bench/overload-server.ts --mode=adaptive`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { inbound, inboundContext, type ShedOptions } from "weft/server";
import { stopWithParent } from "./child.js";
import { SimulatedResource } from "./overload-resource.js";

const flags = new Map<string, string>();
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(arg);
  if (m === null) throw new Error(`overload-server: unknown argument ${JSON.stringify(arg)}`);
  flags.set(m[1] as string, m[2] as string);
}
const num = (name: string, fallback: number): number => {
  const value = Number(flags.get(name) ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`overload-server: --${name} must be a number > 0`);
  return value;
};
const mode = flags.get("mode") ?? "plain";
if (mode !== "plain" && mode !== "fixed" && mode !== "adaptive")
  throw new Error(`overload-server: --mode must be plain, fixed or adaptive, got ${mode}`);
const slots = Math.round(num("slots", 4));
const serviceMs = num("service-ms", 10);
const sampleMs = num("sample-ms", 200);
const shed: ShedOptions =
  flags.get("shed") !== undefined
    ? (JSON.parse(flags.get("shed") as string) as ShedOptions)
    : mode === "fixed"
      ? { limit: Math.round(num("limit", slots + 2)) }
      : { adaptive: true };

const resource = new SimulatedResource(slots, serviceMs);
const BODY = Buffer.from("ok");

/** What the bench reads; reset between its rows. */
let stats = fresh();
function fresh() {
  return { since: performance.now(), answered: 0, wasted: 0, waits: [] as number[], timeline: [] as Sample[] };
}
interface Sample {
  readonly t: number;
  readonly limit: number | null;
  readonly minRttMs: number | null;
  readonly sampleRttMs: number | null;
  readonly inflight: number;
  readonly queued: number;
}

const server =
  mode === "plain" ? null : inbound({ service: "overload", shed, health: false, tracing: false, metrics: false });

async function work(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const ctx = inboundContext();
  // weft/server only: a request nobody waits for any more is not worked.
  const skip = ctx === undefined ? undefined : (): boolean => ctx.aborted || ctx.remainingMs() <= 0;
  let gone = false;
  res.once("close", () => (gone = true));
  const use = await resource.use(skip);
  if (gone) {
    // The caller went away while we worked: the slot time bought nothing.
    if (!use.skipped) stats.wasted++;
    return;
  }
  if (use.skipped) {
    res.writeHead(504, { "content-type": "application/json", connection: "close" });
    res.end(JSON.stringify({ error: "deadline_expired" }));
    return;
  }
  stats.answered++;
  stats.waits.push(use.waitMs);
  res.writeHead(200, {
    "content-type": "text/plain",
    "content-length": String(BODY.length),
    "x-queue-wait-ms": use.waitMs.toFixed(3),
  });
  res.end(BODY);
}

const app = server === null ? work : server.handler(work);

const httpServer = http.createServer((req, res) => {
  if (req.url?.startsWith("/__stats") === true) {
    req.resume();
    const body = {
      mode,
      slots,
      serviceMs,
      capacityPerSecond: resource.capacityPerSecond,
      elapsedMs: performance.now() - stats.since,
      answered: stats.answered,
      wasted: stats.wasted,
      worked: resource.worked,
      skipped: resource.skipped,
      waits: stats.waits,
      busy: resource.busy,
      queued: resource.queued,
      shed: server === null ? 0 : server.snapshot().counters.shed,
      admission: server?.snapshot().admission ?? null,
      timeline: stats.timeline,
    };
    if (req.url === "/__stats?reset=1") {
      stats = fresh();
      resource.resetCounts();
    }
    res.writeHead(200, { "content-type": "application/json", connection: "close" });
    res.end(JSON.stringify(body));
    return;
  }
  req.resume();
  void app(req, res);
});
if (server !== null) server.attach(httpServer);
// Longer than any bench row, so no idle keep-alive connection is closed in the middle of one.
httpServer.keepAliveTimeout = 120_000;
httpServer.headersTimeout = 125_000;
httpServer.requestTimeout = 0;
httpServer.maxRequestsPerSocket = 0;

const sampler = setInterval(() => {
  const admission = server?.snapshot().admission ?? null;
  stats.timeline.push({
    t: Math.round(performance.now() - stats.since),
    limit: admission?.limit ?? null,
    minRttMs: admission?.minRttMs ?? null,
    sampleRttMs: admission?.sampleRttMs ?? null,
    inflight: admission?.inflight ?? resource.busy + resource.queued,
    queued: resource.queued,
  });
}, sampleMs);
sampler.unref();

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${(httpServer.address() as AddressInfo).port}\n`);
});

stopWithParent(() => {
  clearInterval(sampler);
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
});

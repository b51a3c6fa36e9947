/**
 * What `inbound()` costs per request — the server-side counterpart of `overhead.ts`. Target:
 * ≤ 2 µs per request over the bare handler, in memory, with the default options.
 *
 * 1. In memory. The handler is called with real `http.IncomingMessage` / `http.ServerResponse`
 *    objects, built per request the way `node:http`'s server builds them (HTTP/1.1, keep-alive,
 *    a fresh headers object, the request stream ended), over one socket-less `Duplex` whose writes
 *    complete at once. What Node's server does when a response finishes is done here too (detach
 *    the socket, emit `close` on the next tick), so `inbound()`'s end-of-request path runs as it
 *    does on a socket. A request is complete when its response emits `close`; requests are
 *    awaited one after another. Only the socket and the HTTP parser are missing — both rows would
 *    pay them alike.
 *    Rows: the bare handler `(req, res) => res.end("ok")`; the same through `server.handler(fn)`
 *    with the default options, with `shed: { adaptive: true }`, with authz rules (an identity
 *    header from a trusted proxy, two rules, the request allowed by the second), with the
 *    OpenTelemetry metrics SDK, and with a tracer provider registered (`BasicTracerProvider`,
 *    `SimpleSpanProcessor` into an `InMemorySpanExporter`, W3C propagator, the async-hooks
 *    context manager; the request carries a `traceparent`) — registered only around that row's
 *    rounds, so the other rows run untraced. The requests carry `x-weft-timeout-ms`, as a weft
 *    caller's do, so the deadline path runs.
 *    Every in-memory row runs with AsyncLocalStorage enabled — as in any process once
 *    `inbound()` served its first request — so the "over bare" column is `inbound()`'s own cost.
 *    That process-wide tax (Node 20 runs a promise hook for every promise once any
 *    AsyncLocalStorage is in use) is measured apart, in a fresh child process that has never
 *    entered a context: a weft client call (the default stack over `mockService`, as in
 *    `overhead.ts`) with the hooks off, then on (an AsyncLocalStorage of the bench's own, enabled
 *    and disabled around the rounds), interleaved.
 * 2. On a real loopback socket. `bench/inbound-server.ts` in a child process per row — a plain
 *    `node:http` server, the same through `inbound()` (default options), and with `shed:
 *    { adaptive: true }` — separate processes, so that the plain server never runs with
 *    AsyncLocalStorage enabled; and `[ref]` the plain server with AsyncLocalStorage enabled (a
 *    context entered once), which splits inbound()'s delta into the process-wide tax and its own. From this process undici (an Agent, 64 connections) keeps 32
 *    requests in flight, in interleaved slices as `throughput.ts` does; each child reports its
 *    own `process.cpuUsage()` before and after every slice, for the server CPU µs per request.
 *
 * Method (in memory) as `overhead.ts`: each row warmed up, its count calibrated to ~`roundMs`
 * per round, the rows measured round-robin `overheadRounds` times, medians kept. Each in-memory
 * group runs in a fresh child process (a clean heap and JIT state, whatever bench/run.ts ran
 * before in this one). The traced row has a group of its own, with a bare row beside it: its
 * ~5× allocation left the heap in a state that slowed the next row's loop — the bare row's,
 * round after round, by ~1 µs — which hid half of the default row's cost. Every delta is over
 * the bare row of the main group; the bare row beside the traced one is printed as `[ref]`.
 *
 * Run alone: `npx tsx bench/inbound-overhead.ts [--quick]`.
 */
import { spawn } from "node:child_process";
import { AsyncLocalStorage } from "node:async_hooks";
import http from "node:http";
import { Duplex } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Agent, request } from "undici";
import { runWithContext } from "weft";
import { inbound, type InboundOptions } from "weft/server";
import { getJson, startChild, type ChildServer } from "./child.js";
import { fmt, machineLine, perRound, printTable, ratio, readSettings, type BenchSettings } from "./lib.js";
import { measureRows as measure, memoryClient, terminal, type OverheadRow as MemoryRow } from "./overhead.js";
import { drive, tallyStats } from "./throughput.js";

export const INBOUND_OVERHEAD_TARGET_US = 2;

export interface InboundMemoryRow {
  readonly name: string;
  readonly ns: number;
}

export interface InboundLoopbackRow {
  readonly name: string;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU time (user + system) of the server child per request, µs. */
  readonly serverCpuUsPerReq: number;
  /** req/s of each slice, in round order. */
  readonly slices: readonly number[];
  /** Server CPU µs/request of each slice, in round order. */
  readonly cpuSlices: readonly number[];
}

export interface InboundOverheadResult {
  /**
   * In memory, ns per request: the bare handler first, then inbound() rows; the last two (the
   * traced row and the bare handler measured beside it) come from a second child.
   */
  readonly memory: readonly InboundMemoryRow[];
  readonly bareNs: number;
  /** µs per request over bare, default options: the figure for the ≤ 2 µs target. */
  readonly defaultNetUs: number;
  /** The process-wide AsyncLocalStorage tax on a weft client call (fresh child process), ns. */
  readonly als:
    | { readonly rows: readonly InboundMemoryRow[]; readonly callNetNs: number; readonly bareNetNs: number }
    | { readonly skipped: string };
  readonly loopback: readonly InboundLoopbackRow[];
  readonly concurrency: number;
}

// ---------------------------------------------------------------------------------------------
// 1. In memory

/** A socket-less stream: writes complete at once, reads never come. */
class NullSocket extends Duplex {
  remoteAddress = "127.0.0.1";
  remotePort = 50_000;
  encrypted = false;
  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback();
  }
}

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * Serves one request to `listener` on real node:http objects over `socket`; resolves with the
 * response when it emits `close` (as node:http's server emits it: on the tick after it finished).
 */
function serveOne(
  listener: Listener,
  socket: NullSocket,
  url: string,
  headers: () => http.IncomingHttpHeaders,
): Promise<http.ServerResponse> {
  return new Promise((resolve) => {
    const req = new http.IncomingMessage(socket as never);
    req.method = "GET";
    req.url = url;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = "1.1";
    req.headers = headers();
    req.complete = true;
    req.push(null);
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = true;
    res.assignSocket(socket as never);
    // What node:http's resOnFinish does: detach the socket, then `close` on the next tick.
    res.once("finish", () => {
      res.detachSocket(socket as never);
      process.nextTick(() => res.emit("close"));
    });
    res.once("close", () => resolve(res));
    listener(req, res);
  });
}

const MEMORY_ROW = {
  bare: "bare handler (req, res) => res.end()",
  defaults: "inbound() default options",
  bareBesideTraced: "bare handler, beside the traced row [ref]",
} as const;

const URL_PATH = "/v1/items/42";
const BASE_HEADERS = {
  host: "127.0.0.1:8080",
  "user-agent": "undici",
  accept: "*/*",
  "x-weft-timeout-ms": "15000",
} as const;
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

const bare: Listener = (_req, res) => {
  res.end("ok");
};

/** A metric reader that never collects (the cost measured is recording, not exporting). */
class IdleReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The in-memory rows of one group: `main` (bare, default, adaptive, authz, metrics) or `traced`
 * (bare and the tracer-provider row, apart: see the module header).
 */
async function runMemory(settings: BenchSettings, group: "main" | "traced"): Promise<InboundMemoryRow[]> {
  const socket = new NullSocket();
  const quiet = { onWarning: () => {} };
  const made: { close(): Promise<void> }[] = [];
  const through = (options: Omit<InboundOptions, "service">, service: string): Listener => {
    const server = inbound({ service, ...quiet, ...options });
    made.push(server);
    return server.handler(bare);
  };
  const headers = (): http.IncomingHttpHeaders => ({ ...BASE_HEADERS });
  const identityHeaders = (): http.IncomingHttpHeaders => ({
    ...BASE_HEADERS,
    "x-weft-peer-identity": "spiffe://example.org/ns/shop/sa/web",
  });
  const tracedHeaders = (): http.IncomingHttpHeaders => ({ ...BASE_HEADERS, traceparent: TRACEPARENT });

  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  const propagator = new W3CTraceContextPropagator();

  const defaults = through({}, "in-default");
  const adaptive = through({ shed: { adaptive: true } }, "in-adaptive");
  const authz = through(
    {
      identity: { header: "x-weft-peer-identity", trustedProxies: ["127.0.0.1"] },
      authz: {
        rules: [
          { paths: ["/admin/*"], from: ["spiffe://example.org/ns/ops/*"] },
          { paths: ["/v1/items/:id"], methods: ["GET"], from: ["spiffe://example.org/ns/shop/*"] },
        ],
      },
    },
    "in-authz",
  );
  const metered = through({ metrics: { meterProvider } }, "in-metrics");
  const traced = through({}, "in-traced");

  let exported = 0;
  const bareRow: MemoryRow = {
    name: group === "main" ? MEMORY_ROW.bare : MEMORY_ROW.bareBesideTraced,
    call: () => serveOne(bare, socket, URL_PATH, headers),
  };
  const main: MemoryRow[] = [
    bareRow,
    { name: MEMORY_ROW.defaults, call: () => serveOne(defaults, socket, URL_PATH, headers) },
    { name: "inbound() shed: { adaptive: true }", call: () => serveOne(adaptive, socket, URL_PATH, headers) },
    {
      name: "inbound() identity header + 2 authz rules",
      call: () => serveOne(authz, socket, URL_PATH, identityHeaders),
    },
    { name: "inbound() + OTel metrics SDK", call: () => serveOne(metered, socket, URL_PATH, headers) },
  ];
  const tracedRows: MemoryRow[] = [
    bareRow,
    {
      name: "inbound() + OTel tracer provider (SERVER span)",
      call: () => {
        // Spans die young (the exporter emptied every 256): kept ones would be promoted and
        // collected by a major GC later, in another row's loop.
        if (++exported % 256 === 0) exporter.reset();
        return serveOne(traced, socket, URL_PATH, tracedHeaders);
      },
      enter: () => {
        context.setGlobalContextManager(contextManager.enable());
        propagation.setGlobalPropagator(propagator);
        trace.setGlobalTracerProvider(tracerProvider);
      },
      leave: () => {
        trace.disable();
        propagation.disable();
        context.disable();
        exporter.reset();
      },
    },
  ];
  const rows = group === "main" ? main : tracedRows;
  // Checked once: each row answers 200 and finishes, and the traced row makes one span.
  for (const row of rows) {
    row.enter?.();
    const res = (await row.call()) as http.ServerResponse;
    const spans = exporter.getFinishedSpans().length;
    row.leave?.();
    if (res.statusCode !== 200 || !res.writableFinished)
      throw new Error(
        `inbound-overhead: ${row.name} answered ${res.statusCode}${res.writableFinished ? "" : " (unfinished)"}, expected 200`,
      );
    if (row.enter !== undefined && spans !== 1)
      throw new Error(`inbound-overhead: ${row.name} made ${spans} spans, expected 1`);
  }
  // AsyncLocalStorage on for every row (the first inbound request turned it on for good).
  runWithContext({}, () => {});
  try {
    const ns = await measure(rows, settings);
    return rows.map((r, i) => ({ name: r.name, ns: ns[i]! }));
  } finally {
    for (const server of made) await server.close();
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// 1b. The process-wide AsyncLocalStorage tax, in a fresh child process

const CHILD_ENV = "WEFT_BENCH_INBOUND_CHILD";
type ChildPart = "memory" | "traced" | "als";

/** In the child: weft client calls and bare awaits with the promise hooks off, then on, interleaved. */
async function alsProbe(
  settings: BenchSettings,
): Promise<{ rows: InboundMemoryRow[]; callNetNs: number; bareNetNs: number }> {
  const client = memoryClient("als-probe");
  const own = new AsyncLocalStorage<number>();
  // Enabling any AsyncLocalStorage turns Node 20's promise hooks on for the whole process;
  // disabling the last enabled one turns them off. weft's own is never entered in this process.
  const on = { enter: () => own.run(0, () => {}), leave: () => own.disable() };
  const rows: MemoryRow[] = [
    { name: "bare await fn(), AsyncLocalStorage off", call: terminal },
    { name: "weft.request (default stack), AsyncLocalStorage off", call: () => client.request({ path: "/x" }) },
    { name: "bare await fn(), AsyncLocalStorage on", call: terminal, ...on },
    { name: "weft.request (default stack), AsyncLocalStorage on", call: () => client.request({ path: "/x" }), ...on },
  ];
  try {
    const ns = await measure(rows, settings);
    return {
      rows: rows.map((r, i) => ({ name: r.name, ns: ns[i]! })),
      bareNetNs: ns[2]! - ns[0]!,
      callNetNs: ns[3]! - ns[1]!,
    };
  } finally {
    await client.close();
  }
}

/**
 * Runs one in-memory part in a fresh `node --import tsx` child (this file), which prints its
 * result as one JSON line: a clean heap and JIT state whatever ran before in this process
 * (bench/run.ts runs other parts first).
 */
function inChild<T>(part: ChildPart, settings: BenchSettings): Promise<T | { skipped: string }> {
  const args = [
    `--overhead-rounds=${settings.overheadRounds}`,
    `--round-ms=${settings.roundMs}`,
    ...(settings.quick ? ["--quick"] : []),
  ];
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...args], {
    env: { ...process.env, [CHILD_ENV]: part },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  return new Promise((resolve) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => (out += chunk));
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      const line = /^RESULT (.*)$/m.exec(out)?.[1];
      if (code !== 0 || line === undefined)
        resolve({ skipped: `the ${part} child exited with ${code ?? signal} and no result` });
      else resolve(JSON.parse(line) as T);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 2. On a real loopback socket

const LOOPBACK_MODES = [
  { mode: "plain", name: "node:http, plain" },
  { mode: "als", name: "node:http, plain, AsyncLocalStorage on [ref]" },
  { mode: "inbound", name: "node:http + inbound() default" },
  { mode: "adaptive", name: "node:http + inbound() shed adaptive" },
] as const;

/** The server child's own CPU time so far (user + system), µs, read on a fresh connection. */
async function childCpuUs(port: number): Promise<number> {
  const cpu = await getJson<{ user: number; system: number }>(port, "/__cpu");
  return cpu.user + cpu.system;
}

async function runLoopback(settings: BenchSettings): Promise<InboundLoopbackRow[]> {
  const children: ChildServer[] = [];
  const agent = new Agent({ connections: 64 });
  try {
    for (const m of LOOPBACK_MODES) children.push(await startChild("./inbound-server.ts", [`--mode=${m.mode}`]));
    // What a weft caller sends: its time left. The plain server ignores it; inbound() reads it.
    const headers = { "x-weft-timeout-ms": "15000" };
    const rows = LOOPBACK_MODES.map((m, i) => {
      const port = children[i]!.ports[0]!;
      const url = `http://127.0.0.1:${port}/v1/items/42`;
      return {
        name: m.name,
        port,
        call: async () => {
          const res = await request(url, { dispatcher: agent, headers });
          const text = await res.body.text();
          if (res.statusCode !== 200) throw new Error(`${m.name}: status ${res.statusCode} ${text}`);
        },
        tally: { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] },
        cpuUs: 0,
        cpuSlices: [] as number[],
      };
    });
    const sliceMs = settings.durationMs / settings.rounds;
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? rows : [...rows].reverse();
      for (const row of order) {
        await drive(
          row.call,
          settings.concurrency,
          round === 0 ? settings.warmupMs : Math.min(100, settings.warmupMs),
          null,
        );
        const before = row.tally.count;
        const cpuBefore = await childCpuUs(row.port);
        await drive(row.call, settings.concurrency, sliceMs, row.tally);
        const cpu = (await childCpuUs(row.port)) - cpuBefore;
        row.cpuUs += cpu;
        row.cpuSlices.push(cpu / Math.max(1, row.tally.count - before));
      }
    }
    return rows.map((row) => {
      const t = row.tally;
      return {
        name: row.name,
        ...tallyStats(row.name, t),
        serverCpuUsPerReq: row.cpuUs / t.count,
        slices: t.slices ?? [],
        cpuSlices: row.cpuSlices,
      };
    });
  } finally {
    await agent.close();
    for (const child of children) await child.stop();
  }
}

// ---------------------------------------------------------------------------------------------

export async function runInboundOverhead(settings: BenchSettings): Promise<InboundOverheadResult> {
  // One child at a time: none competes with another's measurements, nor with the loopback rows.
  const main = await inChild<InboundMemoryRow[]>("memory", settings);
  if ("skipped" in main) throw new Error(`inbound-overhead: ${main.skipped}`);
  const traced = await inChild<InboundMemoryRow[]>("traced", settings);
  if ("skipped" in traced) throw new Error(`inbound-overhead: ${traced.skipped}`);
  const memory = [...main, traced[1]!, traced[0]!];
  const bareNs = main[0]!.ns;
  const als = await inChild<{ rows: InboundMemoryRow[]; callNetNs: number; bareNetNs: number }>("als", settings);
  const loopback = await runLoopback(settings);
  const defaultNs = main[1]?.ns ?? Number.NaN;
  return {
    memory,
    bareNs,
    defaultNetUs: (defaultNs - bareNs) / 1000,
    als,
    loopback,
    concurrency: settings.concurrency,
  };
}

/** Median over rounds of row / base, per slice (both slices of a round ran back to back). */
function medianRatio(row: readonly number[], base: readonly number[]): number {
  return perRound(row, base).median;
}

export function printInboundOverhead(result: InboundOverheadResult): void {
  printTable(
    ["inbound() in memory, sequential requests", "ns/req", "over bare µs", "× bare"],
    result.memory.map((r, i) => [
      r.name,
      fmt(r.ns),
      i === 0 ? "" : fmt((r.ns - result.bareNs) / 1000, 2),
      (r.ns / result.bareNs).toFixed(1) + "×",
    ]),
  );
  console.log(
    "(real IncomingMessage/ServerResponse over a socket-less Duplex; every row with AsyncLocalStorage enabled, see below)",
  );
  const verdict = result.defaultNetUs <= INBOUND_OVERHEAD_TARGET_US ? "pass" : "FAIL";
  console.log(
    `target: inbound() default options ≤ ${INBOUND_OVERHEAD_TARGET_US} µs per request over bare, in memory: ${fmt(result.defaultNetUs, 2)} µs — ${verdict}\n`,
  );

  if ("skipped" in result.als) console.log(`(AsyncLocalStorage probe skipped: ${result.als.skipped})\n`);
  else {
    printTable(
      ["process-wide: AsyncLocalStorage enabled (fresh child)", "ns/call"],
      result.als.rows.map((r) => [r.name, fmt(r.ns)]),
    );
    console.log(
      `AsyncLocalStorage on costs every promise in the process: +${fmt(result.als.callNetNs)} ns per weft client call, +${fmt(result.als.bareNetNs)} ns per bare await fn() — paid once any context is entered (inbound()'s first request), by all code\n`,
    );
  }

  const plain = result.loopback[0];
  printTable(
    [
      `loopback, concurrency ${result.concurrency}, keep-alive, undici`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "× plain",
      "per-round × plain",
      "server CPU µs/req",
      "over plain µs",
      "errors",
    ],
    result.loopback.map((r, i) => [
      r.name,
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      ratio(r.reqPerSec, plain?.reqPerSec ?? Number.NaN),
      i === 0 || plain === undefined ? "" : `${medianRatio(r.slices, plain.slices).toFixed(2)}×`,
      fmt(r.serverCpuUsPerReq, 1),
      i === 0 || plain === undefined ? "" : fmt(r.serverCpuUsPerReq - plain.serverCpuUsPerReq, 1),
      String(r.errors),
    ]),
  );
  console.log(
    "(server CPU µs/req: user + system time of the server child per request, as it reports process.cpuUsage(); each row its own process)",
  );
}

const childPart = process.env[CHILD_ENV] as ChildPart | undefined;
if (childPart !== undefined) {
  const settings = readSettings();
  const result =
    childPart === "als"
      ? await alsProbe(settings)
      : await runMemory(settings, childPart === "traced" ? "traced" : "main");
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft inbound() overhead bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printInboundOverhead(await runInboundOverhead(settings));
}

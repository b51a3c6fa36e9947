/**
 * Loopback throughput and latency: what weft costs on a real socket, next to the raw clients it
 * is built on and next to the sidecar hop it removes.
 *
 * The upstream is `bench/server.ts` in a child process (a `node:http` server, keep-alive, a 2-byte
 * body). Each row keeps `concurrency` (32) requests in flight for a fixed time (default 3 s after
 * a 0.5 s warm-up), reads every body to its end, and records each call's latency. The 3 s are cut
 * into `rounds` slices and the rows take turns, the order reversed every other round, so a noisy
 * spell of this shared machine is spread over all rows instead of sinking one; counts and
 * latencies are pooled over the slices. Later slices get a 100 ms re-warm (idle connections may
 * have been closed meanwhile).
 *
 * Rows, all against the same server:
 * - `undici.request`: the baseline (an undici Agent, 64 connections per origin).
 * - `undici Pool.request [ref]`: one step lower — the Pool method weft's undici transport calls,
 *   skipping the Agent's URL parsing and origin lookup. The floor for weft.request; not a target.
 * - `fetch`: Node's global fetch (undici inside, plus WHATWG Request/Response/streams).
 * - `got`: got 14 on a keep-alive `http.Agent` (64 sockets), retries off.
 * - `weft.request`, `weft.fetch`: `createClient` with the default stack and default (undici) transport.
 * - `undici.request via HAProxy`: the baseline through HAProxy on loopback — the sidecar hop.
 * - `undici.request, 1 MiB answers` and `weft.request, 1 MiB answers` (`GET /big`, 8 in flight,
 *   read with `arrayBuffer()`): what reading a large body costs each (the summary compares them).
 *
 * Run alone: `npx tsx bench/throughput.ts [--quick] [--duration=ms] [--warmup=ms] [--rounds=n]`.
 */
import http from "node:http";
import { pathToFileURL } from "node:url";
import got from "got";
import { Agent, Pool, request } from "undici";
import { createClient, staticDiscovery } from "weft";
import { startChild } from "./child.js";
import { HAPROXY_INSTALL, findHaproxy, startHaproxy } from "./haproxy.js";
import { fmt, machineLine, percentile, printTable, ratio, readSettings, type BenchSettings } from "./lib.js";

export interface ThroughputRow {
  readonly name: string;
  /** Set when the row could not run; says why and how to fix it. */
  readonly skipped?: string;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU time (user + system) of this process per call, µs: less sensitive to neighbours than req/s. */
  readonly cpuUsPerCall: number;
  /** req/s of each slice, in round order (for the spread of ratios between rounds). */
  readonly slices: readonly number[];
}

export interface ThroughputResult {
  readonly rows: readonly ThroughputRow[];
  readonly concurrency: number;
  readonly note: string;
}

export const ROW = {
  undici: "undici.request",
  pool: "undici Pool.request [ref]",
  fetch: "fetch (global)",
  got: "got",
  weftRequest: "weft.request",
  weftFetch: "weft.fetch",
  haproxy: "undici.request via HAProxy",
  undiciBig: "undici.request, 1 MiB answers",
  weftBig: "weft.request, 1 MiB answers",
} as const;

/** In flight for the 1 MiB rows: 8 MiB of answers at once. */
const BIG_CONCURRENCY = 8;

interface Setup {
  readonly name: string;
  readonly call: () => Promise<unknown>;
  readonly close: () => Promise<unknown>;
  /** Requests in flight for this row, when not `--concurrency`. */
  readonly concurrency?: number;
}

export interface Tally {
  count: number;
  errors: number;
  elapsedMs: number;
  readonly latencies: number[];
  readonly slices?: number[];
  cpuUs?: number;
  firstError?: unknown;
}

/** Starts bench/server.ts in a child process; resolves with its port and a stop function (by pid). */
export async function startServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = await startChild("./server.ts");
  return { port: child.ports[0] as number, stop: () => child.stop() };
}

/** A row's req/s, p50 and p99 (ms) and errors from its tally; prints the first error when any failed. */
export function tallyStats(
  name: string,
  t: Tally,
): { reqPerSec: number; p50Ms: number; p99Ms: number; errors: number } {
  if (t.errors > 0) console.error(`  ${name}: ${t.errors} errors, first: ${String(t.firstError)}`);
  const sorted = Float64Array.from(t.latencies).sort();
  return {
    reqPerSec: (t.count * 1000) / t.elapsedMs,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: t.errors,
  };
}

/** One call, timed: its latency and a count into `tally`, or the error. */
export async function timedCall(call: () => Promise<unknown>, tally: Tally | null): Promise<void> {
  const t = performance.now();
  try {
    await call();
    if (tally !== null) {
      tally.latencies.push(performance.now() - t);
      tally.count++;
    }
  } catch (error) {
    if (tally !== null) {
      tally.errors++;
      tally.firstError ??= error;
    }
  }
}

/** Ends a measured slice begun at `start`: its elapsed time, client CPU and req/s into `tally`. */
export function closeSlice(tally: Tally | null, start: number, cpuBefore: NodeJS.CpuUsage, countBefore: number): void {
  if (tally === null) return;
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  tally.cpuUs = (tally.cpuUs ?? 0) + cpu.user + cpu.system;
  tally.elapsedMs += elapsed;
  tally.slices?.push(((tally.count - countBefore) * 1000) / elapsed);
}

/** Keeps `concurrency` calls in flight for `ms`; `record` keeps counts and latencies. */
export async function drive(
  call: () => Promise<unknown>,
  concurrency: number,
  ms: number,
  tally: Tally | null,
): Promise<void> {
  const start = performance.now();
  const end = start + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) await timedCall(call, tally);
  };
  const before = tally?.count ?? 0;
  const cpuBefore = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  closeSlice(tally, start, cpuBefore, before);
}

async function setUp(port: number): Promise<{ setups: Setup[]; skipped: ThroughputRow[]; note: string }> {
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/`;
  const agent = new Agent({ connections: 64 });
  const pool = new Pool(origin, { connections: 64 });
  const gotAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const gotClient = got.extend({ agent: { http: gotAgent }, retry: { limit: 0 } });
  const weftRequest = createClient({ service: "bench-request", discovery: staticDiscovery([origin]) });
  const weftFetch = createClient({ service: "bench-fetch", discovery: staticDiscovery([origin]) });
  const setups: Setup[] = [
    {
      name: ROW.undici,
      call: async () => (await request(url, { dispatcher: agent })).body.text(),
      close: () => agent.close(),
    },
    {
      name: ROW.pool,
      call: async () => (await pool.request({ path: "/", method: "GET" })).body.text(),
      close: () => pool.close(),
    },
    { name: ROW.fetch, call: async () => (await fetch(url)).text(), close: async () => {} },
    { name: ROW.got, call: () => gotClient(url).text(), close: async () => gotAgent.destroy() },
    {
      name: ROW.weftRequest,
      call: async () => (await weftRequest.request({ path: "/" })).text(),
      close: () => weftRequest.close(),
    },
    { name: ROW.weftFetch, call: async () => (await weftFetch.fetch("/")).text(), close: () => weftFetch.close() },
    {
      name: ROW.undiciBig,
      concurrency: BIG_CONCURRENCY,
      call: async () => (await request(`${origin}/big`, { dispatcher: agent })).body.arrayBuffer(),
      close: async () => {},
    },
    {
      name: ROW.weftBig,
      concurrency: BIG_CONCURRENCY,
      call: async () => (await weftRequest.request({ path: "/big" })).arrayBuffer(),
      close: async () => {},
    },
  ];
  const skipped: ThroughputRow[] = [];
  let note = "";
  const binary = findHaproxy();
  if (binary === null) {
    skipped.push({
      name: ROW.haproxy,
      skipped: `haproxy not on PATH — install with: ${HAPROXY_INSTALL}`,
      reqPerSec: NaN,
      p50Ms: NaN,
      p99Ms: NaN,
      errors: 0,
      cpuUsPerCall: NaN,
      slices: [],
    });
  } else {
    const sidecar = await startHaproxy(binary, port);
    const viaAgent = new Agent({ connections: 64 });
    const viaUrl = `http://127.0.0.1:${sidecar.port}/`;
    note = sidecar.version;
    setups.push({
      name: ROW.haproxy,
      call: async () => (await request(viaUrl, { dispatcher: viaAgent })).body.text(),
      close: async () => {
        await viaAgent.close();
        await sidecar.stop();
      },
    });
  }
  return { setups, skipped, note };
}

export async function runThroughput(settings: BenchSettings): Promise<ThroughputResult> {
  const server = await startServer();
  let setups: Setup[] = [];
  try {
    const prepared = await setUp(server.port);
    setups = prepared.setups;
    const tallies = new Map<string, Tally>(
      setups.map((s) => [s.name, { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] }]),
    );
    const sliceMs = settings.durationMs / settings.rounds;
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? setups : [...setups].reverse();
      for (const s of order) {
        const concurrency = s.concurrency ?? settings.concurrency;
        await drive(s.call, concurrency, round === 0 ? settings.warmupMs : Math.min(100, settings.warmupMs), null);
        await drive(s.call, concurrency, sliceMs, tallies.get(s.name)!);
      }
    }
    const measured: ThroughputRow[] = setups.map((s) => {
      const t = tallies.get(s.name)!;
      return {
        name: s.name,
        ...tallyStats(s.name, t),
        cpuUsPerCall: (t.cpuUs ?? NaN) / t.count,
        slices: t.slices ?? [],
      };
    });
    return { rows: [...measured, ...prepared.skipped], concurrency: settings.concurrency, note: prepared.note };
  } finally {
    for (const s of setups)
      await s.close().catch((error: unknown) => console.error(`closing ${s.name}: ${String(error)}`));
    await server.stop();
  }
}

export function printThroughput(result: ThroughputResult): void {
  const base = result.rows.find((r) => r.name === ROW.undici)?.reqPerSec ?? NaN;
  printTable(
    [
      `loopback, concurrency ${result.concurrency}, keep-alive`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "× undici",
      "CPU µs/call",
      "errors",
    ],
    result.rows.map((r) =>
      r.skipped !== undefined
        ? [r.name, "skipped", "", "", "", "", ""]
        : [
            r.name,
            fmt(r.reqPerSec),
            fmt(r.p50Ms, 2),
            fmt(r.p99Ms, 2),
            ratio(r.reqPerSec, base),
            fmt(r.cpuUsPerCall, 1),
            String(r.errors),
          ],
    ),
  );
  for (const r of result.rows) if (r.skipped !== undefined) console.log(`(${r.name} skipped: ${r.skipped})`);
  console.log("(CPU µs/call: user + system time of the client process only; HAProxy and the server are not counted)");
  if (result.note !== "") console.log(`(sidecar: ${result.note}, default threads)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft throughput bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printThroughput(await runThroughput(settings));
}

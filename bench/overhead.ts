/**
 * Overhead per call, in memory: what wrapping a call in weft's default stack costs when the
 * network costs nothing. The terminal is an async function resolving a small in-memory response
 * (weft's own `BufferedResponse`); weft reaches the same kind of function through `mockService`,
 * so every layer of the stack runs and only the socket is missing.
 *
 * Why it matters: DESIGN.md calls a call's overhead "the product". The target is ≤ 3 µs per call
 * over the bare call for the default stack; opossum (~1.1 µs, FACTS.md) and cockatiel are printed
 * beside it as the cost of doing it with the usual libraries.
 *
 * Method: every row is warmed up, its iteration count calibrated to ~`roundMs` per round, then
 * the rows are measured round-robin (row 1..n, `overheadRounds` times; calls awaited one after
 * another) and the median ns/call per row is reported. Interleaving means a noisy neighbour on
 * this shared machine slows every row alike instead of one.
 *
 * Run alone: `npx tsx bench/overhead.ts [--quick]`.
 */
import { pathToFileURL } from "node:url";
import CircuitBreaker from "opossum";
import { ConsecutiveBreaker, TimeoutStrategy, circuitBreaker, handleAll, retry, timeout, wrap } from "cockatiel";
import { BufferedResponse, createClient, staticDiscovery, type Client, type ClientOptions } from "weft";
import { mockService } from "weft/testing";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { fmt, machineLine, median, printTable, readSettings, type BenchSettings } from "./lib.js";

export interface OverheadRow {
  readonly name: string;
  /** The call to time; awaited once per iteration. */
  readonly call: () => Promise<unknown>;
  /** Run before and after each of the row's timed loops (a provider registered only for that row). */
  readonly enter?: () => void;
  readonly leave?: () => void;
  readonly close?: () => unknown;
}

export interface OverheadResult {
  readonly rows: readonly { readonly name: string; readonly ns: number }[];
  readonly bareNs: number;
  /** µs per call over bare, default stack. */
  readonly weftNetUs: number;
  /** µs per call over bare, with `timeout: { attemptMs: 500, totalMs: 2000 }`. */
  readonly weftTimeoutNetUs: number;
  /** µs per call the OTel metrics SDK adds to the default stack, in all. */
  readonly metricsUs: number;
  /** µs per call of the SDK's own `histogram.record()` with the attributes weft records (over bare). */
  readonly sdkRecordUs: number;
}

/** What weft may add per call for metrics beyond the SDK's own record (issue 10). */
export const METRICS_SHARE_TARGET_US = 1;

export const OVERHEAD_TARGET_US = 3;

/** The terminal every row wraps: an async function resolving a small response. */
export const terminal = async (): Promise<BufferedResponse> => new BufferedResponse(200, "ok");

const ENDPOINTS = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"];

/** A client over the in-memory terminal; the options of the default stack unless `extra` says otherwise. */
export function memoryClient(service: string, extra: Partial<ClientOptions> = {}): Client {
  return createClient({
    service,
    discovery: staticDiscovery(ENDPOINTS),
    transport: mockService(() => ({ status: 200, body: "ok" })),
    ...extra,
  });
}

async function timeLoop(row: OverheadRow, n: number): Promise<number> {
  row.enter?.();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await row.call();
  const ns = Number(process.hrtime.bigint() - start) / n;
  row.leave?.();
  return ns;
}

/** Warm-up, calibration, interleaved rounds; returns the median ns/call of each row. */
export async function measureRows(rows: readonly OverheadRow[], settings: BenchSettings): Promise<number[]> {
  const warmupMs = settings.quick ? 100 : 300;
  const counts: number[] = [];
  for (const row of rows) {
    let done = 0;
    const start = performance.now();
    while (performance.now() - start < warmupMs) {
      await timeLoop(row, 1000);
      done += 1000;
    }
    const nsPerCall = ((performance.now() - start) * 1e6) / done;
    counts.push(Math.max(1000, Math.round((settings.roundMs * 1e6) / nsPerCall)));
  }
  const samples: number[][] = rows.map(() => []);
  for (let round = 0; round < settings.overheadRounds; round++) {
    for (let i = 0; i < rows.length; i++) samples[i]!.push(await timeLoop(rows[i]!, counts[i]!));
  }
  return samples.map(median);
}

export async function runOverhead(settings: BenchSettings): Promise<OverheadResult> {
  const weft = memoryClient("overhead-default");
  const weftTimeout = memoryClient("overhead-timeout", { timeout: { attemptMs: 500, totalMs: 2000 } });
  // The OpenTelemetry metrics SDK recording every attempt (a reader that is never collected: the
  // cost measured is recording, not exporting).
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const weftMetrics = memoryClient("overhead-metrics", { metrics: { meterProvider } });
  // The SDK's own cost: one record with the attributes weft gives an attempt (semconv's five and
  // weft.service), on an instrument of the same provider.
  const histogram = meterProvider.getMeter("overhead-sdk").createHistogram("http.client.request.duration");
  const attributes = {
    "http.request.method": "GET",
    "server.address": "127.0.0.1",
    "server.port": 1,
    "weft.service": "overhead-metrics",
    "http.response.status_code": 200,
  };
  // Checked once: the bench measures a working call, not a rejected one.
  const probe = await weft.request({ path: "/x" });
  if (probe.status !== 200 || (await probe.text()) !== "ok")
    throw new Error("overhead: weft over mockService did not answer 200 ok");

  const breaker = new CircuitBreaker(terminal, { timeout: false });
  const cockatielFull = wrap(
    retry(handleAll, { maxAttempts: 3 }),
    circuitBreaker(handleAll, { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(5) }),
    timeout(500, TimeoutStrategy.Cooperative),
  );
  const cockatielNoTimeout = wrap(
    retry(handleAll, { maxAttempts: 3 }),
    circuitBreaker(handleAll, { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(5) }),
  );

  const rows: OverheadRow[] = [
    { name: "bare await fn()", call: terminal },
    { name: "weft.request, default stack", call: () => weft.request({ path: "/x" }), close: () => weft.close() },
    {
      name: "weft.request, attemptMs 500 + totalMs 2000",
      call: () => weftTimeout.request({ path: "/x" }),
      close: () => weftTimeout.close(),
    },
    {
      name: "weft.request, default stack + OTel metrics SDK",
      call: () => weftMetrics.request({ path: "/x" }),
      close: () => weftMetrics.close().then(() => meterProvider.shutdown()),
    },
    { name: "OTel SDK histogram.record alone (5 attributes)", call: async () => histogram.record(0.001, attributes) },
    { name: "opossum fire (timeout: false)", call: () => breaker.fire(), close: () => breaker.shutdown() },
    { name: "cockatiel wrap(retry, breaker, timeout)", call: () => cockatielFull.execute(terminal) },
    { name: "cockatiel wrap(retry, breaker) [ref]", call: () => cockatielNoTimeout.execute(terminal) },
  ];
  try {
    const ns = await measureRows(rows, settings);
    const bareNs = ns[0] as number;
    return {
      rows: rows.map((r, i) => ({ name: r.name, ns: ns[i] as number })),
      bareNs,
      weftNetUs: ((ns[1] as number) - bareNs) / 1000,
      weftTimeoutNetUs: ((ns[2] as number) - bareNs) / 1000,
      metricsUs: ((ns[3] as number) - (ns[1] as number)) / 1000,
      sdkRecordUs: ((ns[4] as number) - bareNs) / 1000,
    };
  } finally {
    for (const row of rows) await row.close?.();
  }
}

/** A metric reader that never collects. */
class IdleReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export function printOverhead(result: OverheadResult): void {
  printTable(
    ["in memory, sequential awaits", "ns/call", "over bare µs", "× bare"],
    result.rows.map((r, i) => [
      r.name,
      fmt(r.ns),
      i === 0 ? "" : fmt((r.ns - result.bareNs) / 1000, 2),
      (r.ns / result.bareNs).toFixed(1) + "×",
    ]),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft overhead bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printOverhead(await runOverhead(settings));
}

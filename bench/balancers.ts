/**
 * Beyond Round Robin (Linkerd's experiment, "Beyond Round Robin: Load Balancing for Latency",
 * 2016): replicas are never all equally fast, and a balancer that only counts requests keeps
 * feeding one that has become slow. A latency-aware balancer (P2C over peak-EWMA, Finagle's and
 * Linkerd's) should route around it so that the tail of the whole service barely moves. Target:
 * with one replica 20× slower for a third of the row, weft's `p2cEwma()` keeps its p99 within
 * 1.5× of the all-healthy p99, and ahead of round-robin, least-request and undici's BalancedPool.
 *
 * Workload: 10 replicas (replicas.ts, one child process, 10 ports on 127.0.0.1) answer each
 * request after a delay drawn from a log-normal distribution — median 2 ms, σ 0.6 (p90 4.3 ms,
 * p99 8.1 ms, p99.9 12.8 ms), rounded to a whole ms — so replicas are alike but never uniform.
 * Every row keeps 32 requests in flight, closed loop, for `lbRowMs` (7 s; 1.5 s with --quick)
 * after `lbWarmupMs` unmeasured (1 s; 0.25 s) on a fresh client or pool; for the middle third of
 * the measured time replica 3 multiplies its delays by 20 (median 40 ms, p99 ~160 ms), switched
 * on and off over the replicas' control path at 1/3 and 2/3 of the row. Every call has a fixed
 * 100 ms budget — weft `timeout: { totalMs: 100 }` (to the response headers); BalancedPool an
 * AbortController aborted by a 100 ms timer (undici's own `headersTimeout` runs on its 1 s
 * fast-timer wheel and cannot express 100 ms) — so a call stuck on the slow replica fails and
 * the success rate means something (a 20× draw passes 100 ms 6 % of the time). A failed call's
 * latency is counted at the time it failed (≈ 100 ms), so percentiles cover every call.
 *
 * Rows, each the same workload:
 * - `p2cEwma, all healthy [baseline]` — no slow replica; the p99 every other row is compared to.
 * - `weft roundRobin()`, `weft leastRequest()`, `weft p2cEwma()` — balancing isolated: `retry:
 *   false, breaker: false, outlier: false, slowStart: false` (hedging is off unless set).
 * - `undici BalancedPool` — `new BalancedPool(origins, { connections: 64 }).request(...)`: undici's
 *   own balancer, weighted round-robin whose weights drop only on connection errors (and which
 *   skips a pool that is full: never, with 64 connections each and 32 calls in flight).
 * - `weft p2cEwma(), full defaults` — the product as shipped: retries with their budget,
 *   per-endpoint breakers, outlier detection and slow start, with the same 100 ms budget.
 *
 * Columns: percentiles of every call; `× healthy p99`; success rate; `slow share` = share of the
 * requests the servers received during the slow third that went to the slow replica (10 % for a
 * blind balancer); `window p99` = p99 of the calls started during the slow third alone. For the
 * weft rows, what the balancer believed: the slow endpoint's peak-EWMA estimate and in-flight
 * (mean of snapshots every 200 ms over the slow third) against the median estimate of the others.
 *
 * Run alone: `npx tsx bench/balancers.ts [--quick] [--lb-row-ms=n] [--lb-warmup-ms=n]`.
 */
import { pathToFileURL } from "node:url";
import { BalancedPool } from "undici";
import {
  createClient,
  errorCode,
  leastRequest,
  p2cEwma,
  roundRobin,
  staticDiscovery,
  type Balancer,
  type Client,
  type ClientOptions,
} from "weft";
import { readStats, setSlowdown, startChild, total } from "./child.js";
import { fmt, machineLine, median, percentile, printTable, readSettings, sleep, type BenchSettings } from "./lib.js";

const LB = {
  replicas: 10,
  medianMs: 2,
  sigma: 0.6,
  slowReplica: 3,
  slowFactor: 20,
  concurrency: 32,
  timeoutMs: 100,
} as const;
/** p2cEwma's p99 with the slow replica, at most this multiple of the all-healthy p99. */
export const LB_P99_TARGET = 1.5;

export const LB_ROW = {
  healthy: "weft p2cEwma(), all healthy [baseline]",
  roundRobin: "weft roundRobin()",
  leastRequest: "weft leastRequest()",
  p2c: "weft p2cEwma()",
  balancedPool: "undici BalancedPool",
  full: "weft p2cEwma(), full defaults",
} as const;

/** What a weft row's balancer believed during the slow third (snapshot means). */
export interface BalancerView {
  readonly slowEwmaMs: number;
  readonly slowInflight: number;
  readonly othersEwmaMs: number;
  readonly othersInflight: number;
}

export interface LbRow {
  readonly name: string;
  readonly slow: boolean;
  readonly calls: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly success: number;
  /** Error codes of the failed calls, with counts. */
  readonly errors: ReadonlyMap<string, number>;
  /** Share of the servers' requests in the slow third that reached the slow replica. */
  readonly slowShare: number;
  /** p99 of the calls started during the slow third. */
  readonly windowP99Ms: number;
  /** Requests the servers received / calls (retries add to it). */
  readonly serverPerCall: number;
  readonly view?: BalancerView;
}

export interface LbResult {
  readonly rows: readonly LbRow[];
  readonly rowMs: number;
  readonly warmupMs: number;
}

class TimeoutAbort extends Error {
  readonly code = "BENCH_TIMEOUT";
}

interface RowSpec {
  readonly name: string;
  readonly slow: boolean;
  /** Makes the row's fresh client; returns one call and its teardown. */
  readonly make: () => { call: () => Promise<void>; close: () => Promise<void>; client?: Client };
}

/** Keeps `concurrency` calls in flight until `endAt`; records each call's time and outcome. */
async function drive(
  call: () => Promise<void>,
  endAt: number,
  sink: { latencies: number[]; starts: number[]; ok: number; errors: Map<string, number> } | null,
): Promise<void> {
  const worker = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const start = performance.now();
      let failed = false;
      try {
        await call();
      } catch (error) {
        failed = true;
        if (sink !== null) {
          const code = error instanceof TimeoutAbort ? error.code : errorCode(error);
          sink.errors.set(code, (sink.errors.get(code) ?? 0) + 1);
        }
      }
      if (sink !== null) {
        sink.latencies.push(performance.now() - start);
        sink.starts.push(start);
        if (!failed) sink.ok++;
      }
    }
  };
  await Promise.all(Array.from({ length: LB.concurrency }, worker));
}

export async function runBalancers(settings: BenchSettings): Promise<LbResult> {
  const server = await startChild("./replicas.ts", [
    `--replicas=${LB.replicas}`,
    `--median-ms=${LB.medianMs}`,
    `--sigma=${LB.sigma}`,
  ]);
  const statsPort = server.ports[0] as number;
  const origins = server.ports.map((p) => `http://127.0.0.1:${p}`);
  const slowUrl = origins[LB.slowReplica] as string;
  const discovery = staticDiscovery(origins);
  const rowMs = settings.lbRowMs;
  const warmupMs = settings.lbWarmupMs;

  // Balancing isolated: no retry, breaker, outlier ejection or slow start; hedging is off unless set.
  const isolated = (balancer: Balancer): ClientOptions => ({
    service: "lb",
    discovery,
    balancer,
    timeout: { totalMs: LB.timeoutMs },
    retry: false,
    breaker: false,
    outlier: false,
    slowStart: false,
  });
  const weft =
    (options: ClientOptions) => (): { call: () => Promise<void>; close: () => Promise<void>; client: Client } => {
      const client = createClient(options);
      return {
        client,
        call: async () => {
          const res = await client.request({ path: "/" });
          await res.text();
          if (res.status !== 200) throw new Error(`status ${res.status}`);
        },
        close: () => client.close(),
      };
    };
  const balancedPool = (): { call: () => Promise<void>; close: () => Promise<void> } => {
    const pool = new BalancedPool(origins, { connections: 64 });
    return {
      call: async () => {
        const controller = new AbortController();
        const timer = setTimeout(
          () => controller.abort(new TimeoutAbort(`no answer within ${LB.timeoutMs} ms`)),
          LB.timeoutMs,
        );
        try {
          const res = await pool.request({ path: "/", method: "GET", signal: controller.signal });
          await res.body.text();
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        } finally {
          clearTimeout(timer);
        }
      },
      close: () => pool.close(),
    };
  };

  const specs: RowSpec[] = [
    { name: LB_ROW.healthy, slow: false, make: weft(isolated(p2cEwma())) },
    { name: LB_ROW.roundRobin, slow: true, make: weft(isolated(roundRobin())) },
    { name: LB_ROW.leastRequest, slow: true, make: weft(isolated(leastRequest())) },
    { name: LB_ROW.p2c, slow: true, make: weft(isolated(p2cEwma())) },
    { name: LB_ROW.balancedPool, slow: true, make: balancedPool },
    { name: LB_ROW.full, slow: true, make: weft({ service: "lb", discovery, timeout: { totalMs: LB.timeoutMs } }) },
  ];

  const rows: LbRow[] = [];
  try {
    // Warm the process (JIT, heap) with a throwaway client before the first row.
    {
      const warm = weft(isolated(p2cEwma()))();
      await drive(warm.call, performance.now() + (settings.quick ? 500 : 1500), null);
      await warm.close();
    }
    for (const spec of specs) {
      const { call, close, client } = spec.make();
      try {
        await drive(call, performance.now() + warmupMs, null);
        const sink = { latencies: [] as number[], starts: [] as number[], ok: 0, errors: new Map<string, number>() };
        const startAt = performance.now();
        const endAt = startAt + rowMs;
        const windowStart = startAt + rowMs / 3;
        const windowEnd = startAt + (2 * rowMs) / 3;
        const statsStart = await readStats(statsPort);
        const views: BalancerView[] = [];
        // The control path runs beside the workers: slow from 1/3 to 2/3 of the row.
        const control = (async () => {
          await sleep(windowStart - performance.now());
          if (spec.slow) await setSlowdown(statsPort, LB.slowReplica, LB.slowFactor);
          const before = await readStats(statsPort);
          while (performance.now() < windowEnd - 200) {
            await sleep(200);
            if (client !== undefined) views.push(viewOf(client, slowUrl));
          }
          await sleep(windowEnd - performance.now());
          const after = await readStats(statsPort);
          if (spec.slow) await setSlowdown(statsPort, LB.slowReplica, 1);
          return { before, after };
        })();
        await drive(call, endAt, sink);
        const elapsed = performance.now() - startAt;
        const { before, after } = await control;
        const statsEnd = await readStats(statsPort);
        const windowRequests = after.requests.map((n, i) => n - (before.requests[i] as number));
        const sorted = Float64Array.from(sink.latencies).sort();
        const windowLatencies = Float64Array.from(
          sink.latencies.filter(
            (_, i) => (sink.starts[i] as number) >= windowStart && (sink.starts[i] as number) < windowEnd,
          ),
        ).sort();
        const calls = sink.latencies.length;
        rows.push({
          name: spec.name,
          slow: spec.slow,
          calls,
          reqPerSec: (calls / elapsed) * 1000,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          p999Ms: percentile(sorted, 99.9),
          maxMs: sorted[sorted.length - 1] ?? Number.NaN,
          success: sink.ok / calls,
          errors: sink.errors,
          slowShare: (windowRequests[LB.slowReplica] as number) / total(windowRequests),
          windowP99Ms: percentile(windowLatencies, 99),
          serverPerCall: (total(statsEnd.requests) - total(statsStart.requests)) / calls,
          ...(views.length === 0 ? {} : { view: meanView(views) }),
        });
      } finally {
        await setSlowdown(statsPort, LB.slowReplica, 1).catch(() => {});
        await close().catch((error: unknown) => console.error(`closing ${spec.name}: ${String(error)}`));
      }
    }
  } finally {
    await server.stop();
  }
  return { rows, rowMs, warmupMs };
}

/** The slow endpoint's estimate and in-flight against the others' medians, from a snapshot. */
function viewOf(client: Client, slowUrl: string): BalancerView {
  const endpoints = client.snapshot().endpoints;
  const slow = endpoints.find((e) => e.url === slowUrl);
  const others = endpoints.filter((e) => e.url !== slowUrl);
  return {
    slowEwmaMs: slow?.ewmaMs ?? Number.NaN,
    slowInflight: slow?.inflight ?? Number.NaN,
    othersEwmaMs: median(others.map((e) => e.ewmaMs ?? Number.NaN)),
    othersInflight: median(others.map((e) => e.inflight)),
  };
}

function meanView(views: readonly BalancerView[]): BalancerView {
  const mean = (f: (v: BalancerView) => number): number => views.reduce((a, v) => a + f(v), 0) / views.length;
  return {
    slowEwmaMs: mean((v) => v.slowEwmaMs),
    slowInflight: mean((v) => v.slowInflight),
    othersEwmaMs: mean((v) => v.othersEwmaMs),
    othersInflight: mean((v) => v.othersInflight),
  };
}

export function printBalancers(result: LbResult): void {
  const base = result.rows.find((r) => r.name === LB_ROW.healthy);
  printTable(
    [
      `${LB.replicas} replicas, log-normal ${LB.medianMs} ms σ ${LB.sigma}; #${LB.slowReplica} ${LB.slowFactor}× for the middle third`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "max ms",
      "× healthy p99",
      "success",
      "slow share",
      "window p99",
      "reqs/call",
      "errors",
    ],
    result.rows.map((r) => [
      r.name,
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      fmt(r.p999Ms, 2),
      fmt(r.maxMs, 1),
      base === undefined ? "—" : `${(r.p99Ms / base.p99Ms).toFixed(2)}×`,
      `${(r.success * 100).toFixed(2)} %`,
      `${(r.slowShare * 100).toFixed(2)} %`,
      fmt(r.windowP99Ms, 2),
      r.serverPerCall.toFixed(3),
      [...r.errors].map(([code, n]) => `${fmt(n)} ${code.replace("WEFT_ERR_", "")}`).join(", ") || "0",
    ]),
  );
  console.log(
    `(${fmt(result.rowMs)} ms measured per row after ${fmt(result.warmupMs)} ms warm-up, ${LB.concurrency} in flight, ${LB.timeoutMs} ms per call; ` +
      `latency = call to end of body, failed calls at the time they failed; slow share = the slow replica's share of server requests during the slow third (healthy row: the same replica, never slowed); ` +
      `window p99 = calls started in the slow third; reqs/call = server requests / calls)`,
  );
  for (const r of result.rows) {
    if (r.view === undefined) continue;
    const v = r.view;
    console.log(
      `  ${r.name}: during the slow third the slow endpoint's peak-EWMA averaged ${fmt(v.slowEwmaMs, 1)} ms with ${fmt(v.slowInflight, 1)} in flight; ` +
        `the others' median ${fmt(v.othersEwmaMs, 1)} ms with ${fmt(v.othersInflight, 1)} in flight`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft Beyond Round Robin bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printBalancers(await runBalancers(settings));
}

/**
 * Retry storm: what retries do to a service that is already down. When every call fails, a client
 * that retries each call 3 times triples the load on the service at the worst moment — the storm
 * that keeps an overloaded service from recovering. weft's retry budget (Finagle's RetryBudget)
 * promises the servers see at most the offered calls × (1 + ratio) plus a floor, never × 3.
 *
 * Workload: one replica (replicas.ts in a child process) answers every request with an immediate
 * 503, no Retry-After. Each row offers the same fixed workload — `stormCalls` GETs (2,000; 500
 * with --quick), closed loop, 16 in flight — through a fresh client, and reads from the server how
 * many requests arrived. A fixed count rather than a fixed rate, so "per offered call" has one
 * denominator for every row; a naive retrier's calls take longer, which a fixed rate would hide.
 *
 * Rows: `undici, no retries` (the baseline: the server sees N); `naive: undici, 3 attempts in a
 * loop`; `weft, 3 attempts, budget: false` (the same storm through weft, no budget, no backoff,
 * breaker off); `weft default retry, breaker: false` (the budget alone); `weft full defaults`
 * (budget and per-endpoint breakers).
 *
 * The budget's floor is a reserve of minPerSecond × ttlMs/1000 retries (100 by default) that
 * a withdrawal holds for ttlMs (retry/budget.ts, as Finagle's). A burst shorter than ttlMs can
 * spend all of it at once, so the target allows the reserve once per ttlMs window the row touched.
 *
 * Run alone: `npx tsx bench/storm.ts [--quick] [--storm-calls=n]`.
 */
import { pathToFileURL } from "node:url";
import { Pool } from "undici";
import { createClient, errorCode, staticDiscovery, type Client, type RetryBudgetConfig } from "weft";
import { readStats, startChild, total } from "./child.js";
import { fmt, machineLine, printTable, readSettings, type BenchSettings } from "./lib.js";

const STORM_CONCURRENCY = 16;
/** The budget's promise: retries add at most this share of the offered calls (plus the floor). */
export const STORM_RATIO_TARGET = 0.2;

export const STORM_ROW = {
  none: "undici, no retries",
  naive: "naive: undici, 3 attempts in a loop",
  weftNaive: "weft, 3 attempts, budget: false",
  weftBudget: "weft default retry, breaker: false",
  weftDefaults: "weft full defaults (+ breakers)",
} as const;

export interface StormRow {
  readonly name: string;
  readonly calls: number;
  /** Requests the server received during the row. */
  readonly serverRequests: number;
  readonly durationMs: number;
  /** Calls that ended with a 503 response, and calls that ended with an error (by code). */
  readonly responses503: number;
  readonly errors: ReadonlyMap<string, number>;
  /** weft rows: retries sent and retries the budget refused (events). */
  readonly retries?: number;
  readonly budgetRefused?: number;
  /** weft rows with a budget: the floor the run was allowed (reserve × ttl windows touched). */
  readonly floor?: number;
}

export interface StormResult {
  readonly rows: readonly StormRow[];
  readonly calls: number;
  readonly budget: RetryBudgetConfig;
}

/** The budget's floor over a run of `durationMs`: its reserve, once per ttlMs window the run touched. */
function budgetFloor(budget: RetryBudgetConfig, durationMs: number): number {
  return ((budget.minPerSecond * budget.ttlMs) / 1000) * Math.max(1, Math.ceil(durationMs / budget.ttlMs));
}

/** Runs `calls` calls of `call`, `concurrency` at a time; returns the outcomes. */
async function offer(
  call: () => Promise<number>,
  calls: number,
  concurrency: number,
): Promise<Pick<StormRow, "responses503" | "errors" | "durationMs">> {
  let issued = 0;
  let responses503 = 0;
  const errors = new Map<string, number>();
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (issued < calls) {
      issued++;
      try {
        if ((await call()) === 503) responses503++;
      } catch (error) {
        const code = errorCode(error);
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { responses503, errors, durationMs: performance.now() - start };
}

export async function runStorm(settings: BenchSettings): Promise<StormResult> {
  const server = await startChild("./replicas.ts", ["--replicas=1", "--status=503"]);
  const port = server.ports[0] as number;
  const origin = `http://127.0.0.1:${port}`;
  const calls = settings.stormCalls;
  const rows: StormRow[] = [];
  let budget: RetryBudgetConfig | undefined;
  try {
    const measure = async (name: string, call: () => Promise<number>, client?: Client): Promise<void> => {
      let retries = 0;
      let refused = 0;
      const disposers =
        client === undefined
          ? []
          : [client.events.onRetry(() => retries++), client.events.onBudgetExhausted(() => refused++)];
      const before = total((await readStats(port)).requests);
      const outcome = await offer(call, calls, STORM_CONCURRENCY);
      const serverRequests = total((await readStats(port)).requests) - before;
      for (const dispose of disposers) dispose();
      const config = client?.config.budget;
      if (config !== undefined && config !== false) budget = config;
      rows.push({
        name,
        calls,
        serverRequests,
        ...outcome,
        ...(client === undefined ? {} : { retries, budgetRefused: refused }),
        ...(config !== undefined && config !== false ? { floor: budgetFloor(config, outcome.durationMs) } : {}),
      });
    };

    const pool = new Pool(origin, { connections: STORM_CONCURRENCY });
    try {
      const once = async (): Promise<number> => {
        const res = await pool.request({ path: "/", method: "GET" });
        await res.body.text();
        return res.statusCode;
      };
      await measure(STORM_ROW.none, once);
      await measure(STORM_ROW.naive, async () => {
        let status = 0;
        for (let attempt = 0; attempt < 3 && (status === 0 || status === 503); attempt++) status = await once();
        return status;
      });
    } finally {
      await pool.close();
    }

    const weftRows: [string, Parameters<typeof createClient>[0]][] = [
      [
        STORM_ROW.weftNaive,
        {
          service: "storm",
          discovery: staticDiscovery([origin]),
          retry: { maxAttempts: 3, budget: false, backoff: { baseMs: 0, maxMs: 0 } },
          breaker: false,
        },
      ],
      [STORM_ROW.weftBudget, { service: "storm", discovery: staticDiscovery([origin]), breaker: false }],
      [STORM_ROW.weftDefaults, { service: "storm", discovery: staticDiscovery([origin]) }],
    ];
    for (const [name, options] of weftRows) {
      const client = createClient(options);
      try {
        await measure(
          name,
          async () => {
            const res = await client.request({ path: "/" });
            await res.text();
            return res.status;
          },
          client,
        );
      } finally {
        await client.close();
      }
    }
  } finally {
    await server.stop();
  }
  return { rows, calls, budget: budget ?? { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 } };
}

/** Requests the server saw per offered call, for a row. */
export function loadRatio(result: StormResult, name: string): number {
  const row = result.rows.find((r) => r.name === name);
  return row === undefined ? Number.NaN : row.serverRequests / row.calls;
}

export function printStorm(result: StormResult): void {
  printTable(
    [
      `every request 503, ${fmt(result.calls)} calls, ${STORM_CONCURRENCY} in flight`,
      "server reqs",
      "per call",
      "retries",
      "refused",
      "floor",
      "ms",
      "503s",
      "errors",
    ],
    result.rows.map((r) => [
      r.name,
      fmt(r.serverRequests),
      `${(r.serverRequests / r.calls).toFixed(2)}×`,
      r.retries === undefined ? "" : fmt(r.retries),
      r.budgetRefused === undefined ? "" : fmt(r.budgetRefused),
      r.floor === undefined ? "" : fmt(r.floor),
      fmt(r.durationMs),
      fmt(r.responses503),
      [...r.errors].map(([code, n]) => `${fmt(n)} ${code.replace("WEFT_ERR_", "")}`).join(", ") || "0",
    ]),
  );
  const b = result.budget;
  console.log(
    `(per call = requests the server received / calls offered; retries, refused = onRetry / onBudgetExhausted events; ` +
      `floor = the budget's reserve, ${b.minPerSecond}/s × ${b.ttlMs / 1000} s, once per ${b.ttlMs / 1000} s window the row touched)`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft retry-storm bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printStorm(await runStorm(settings));
}

/**
 * Memory per endpoint: what a client holds for each endpoint of a large service — the endpoint
 * record, its load state, its outlier counts and its circuit breaker. Target: ≤ 2 KB per endpoint
 * with weft's defaults (breakers on), at 10,000 endpoints.
 *
 * Method: each measurement runs in a child process of its own (`memory-probe.ts`, started with
 * `process.execPath --expose-gc --import tsx`), so each starts from a clean heap. The child makes
 * the URLs first (the caller's strings, not charged), warms the code paths on a throwaway client,
 * collects garbage and reads `heapUsed`, builds the thing measured, sends one request through
 * every endpoint where a client is measured (`roundRobin()` over `mockService`, so no server:
 * every endpoint gets its breaker and load state), collects again and reads again. Figures are
 * the heapUsed growth / N (ArrayBuffer memory, outside the JS heap, shown beside it). A client's
 * fixed cost (its histograms, the breaker LRU's slot arrays for 10,000 entries) is included: at
 * N = 10,000 it is a few bytes per endpoint.
 *
 * Also a client's fixed cost, apart from its endpoints: 50 clients of 3 endpoints, with the
 * defaults and with `breaker: false` (full mode only).
 *
 * Rows: the target (`createClient` defaults), then the same with `breaker: false`, and with
 * `outlier: false` too, and with no request sent (no breaker made yet); then the pieces alone —
 * `new Endpoint({ url }, 0)`, an opossum breaker with the options weft passes, opossum's rolling
 * window (`Status`) alone — and, for reference, an unconnected undici `Pool` per origin (what the
 * default transport adds; the target uses `mockService`, so it is not counted there).
 *
 * With --quick only the client rows and the opossum piece run (each probe is a process start).
 *
 * Run alone: `npx tsx bench/memory.ts [--quick] [--memory-endpoints=n]`.
 */
import { spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { fmt, machineLine, printTable, readSettings, type BenchSettings } from "./lib.js";

/** Bytes per endpoint allowed with the defaults, breaker included. */
export const MEMORY_TARGET_BYTES = 2048;

export const MEMORY_ROW = {
  defaults: "client, defaults (breakers on) — target",
  noBreaker: "client, breaker: false",
  noOutlier: "client, breaker: false, outlier: false",
  idle: "client, defaults, no request sent (no breakers yet)",
  endpoint: "new Endpoint({ url }, 0) alone",
  opossum: "opossum breaker, weft's options [piece]",
  status: "opossum Status (rolling window) alone [piece]",
  pool: "undici Pool per origin, unconnected [ref]",
} as const;

/** Kinds measured; with --quick only the client rows and the opossum piece (each probe is a process start). */
const KINDS: readonly [string, string, boolean][] = [
  [MEMORY_ROW.defaults, "client-defaults", true],
  [MEMORY_ROW.noBreaker, "client-no-breaker", true],
  [MEMORY_ROW.noOutlier, "client-no-breaker-no-outlier", true],
  [MEMORY_ROW.idle, "client-idle", false],
  [MEMORY_ROW.endpoint, "endpoint", false],
  [MEMORY_ROW.opossum, "opossum", true],
  [MEMORY_ROW.status, "opossum-status", false],
  [MEMORY_ROW.pool, "undici-pool", false],
];

export interface MemoryRow {
  readonly name: string;
  readonly endpoints: number;
  /** Endpoints that received a request (client rows). */
  readonly exercised: number;
  readonly heapPerEndpoint: number;
  readonly externalPerEndpoint: number;
}

export interface MemoryResult {
  readonly rows: readonly MemoryRow[];
  readonly endpoints: number;
  /** Heap of one 3-endpoint client (mean of 50), with defaults and with `breaker: false`; absent with --quick. */
  readonly smallClientBytes?: { readonly defaults: number; readonly noBreaker: number };
}

/** Runs one probe in a fresh `--expose-gc` process; stops it by pid after 60 s. */
function probe(
  what: string,
  endpoints: number,
): Promise<{ exercised: number; heapBytes: number; externalBytes: number }> {
  const script = fileURLToPath(new URL("./memory-probe.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", script, `--what=${what}`, `--endpoints=${endpoints}`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
      reject(new Error(`memory-probe --what=${what} did not finish within 60 s`));
    }, 60_000);
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        if (code !== 0) throw new Error(`exit code ${code}`);
        resolve(JSON.parse(line) as { exercised: number; heapBytes: number; externalBytes: number });
      } catch (error) {
        reject(new Error(`memory-probe --what=${what} failed (${String(error)}): ${out}`));
      }
    });
  });
}

export async function runMemory(settings: BenchSettings): Promise<MemoryResult> {
  const n = settings.memoryEndpoints;
  const rows: MemoryRow[] = [];
  for (const [name, what, quick] of KINDS) {
    if (settings.quick && !quick) continue;
    const r = await probe(what, n);
    rows.push({
      name,
      endpoints: n,
      exercised: r.exercised,
      heapPerEndpoint: r.heapBytes / n,
      externalPerEndpoint: r.externalBytes / n,
    });
  }
  if (settings.quick) return { rows, endpoints: n };
  // A client's fixed cost, apart from its endpoints: 50 clients of 3 endpoints each.
  const small = await probe("small-clients", 3);
  const smallNoBreaker = await probe("small-clients-no-breaker", 3);
  return {
    rows,
    endpoints: n,
    smallClientBytes: { defaults: small.heapBytes / 50, noBreaker: smallNoBreaker.heapBytes / 50 },
  };
}

/** The bytes per endpoint of a row, by name. */
export function memoryOf(result: MemoryResult, name: string): number {
  return result.rows.find((r) => r.name === name)?.heapPerEndpoint ?? Number.NaN;
}

export function printMemory(result: MemoryResult): void {
  printTable(
    [
      `${fmt(result.endpoints)} endpoints, heap after gc`,
      "bytes / endpoint",
      "KB / endpoint",
      "ArrayBuffer B / ep",
      "requests reached",
    ],
    result.rows.map((r) => [
      r.name,
      fmt(r.heapPerEndpoint),
      fmt(r.heapPerEndpoint / 1024, 2),
      fmt(r.externalPerEndpoint),
      r.name.startsWith("client") ? `${fmt(r.exercised)} endpoints` : "",
    ]),
  );
  const of = (name: string): number => memoryOf(result, name);
  const breaker = of(MEMORY_ROW.defaults) - of(MEMORY_ROW.noBreaker);
  const opossum = of(MEMORY_ROW.opossum);
  const status = of(MEMORY_ROW.status);
  console.log(
    `(where it goes, bytes per endpoint: breakers ${fmt(breaker)} — weft's entry and LRU slot; an opossum instance ` +
      `(${fmt(opossum)} B: rolling window ${fmt(status)}, listeners + options copy + semaphore ${fmt(opossum - status)}) is made only ` +
      `for an endpoint that has failed; outlier counts ${fmt(of(MEMORY_ROW.noBreaker) - of(MEMORY_ROW.noOutlier))}; ` +
      `the rest ${fmt(of(MEMORY_ROW.noOutlier))}, of which the Endpoint record ${fmt(of(MEMORY_ROW.endpoint))})`,
  );
  const small = result.smallClientBytes;
  if (small !== undefined) {
    console.log(
      `(a client's fixed cost, 3 endpoints, mean of 50: ${fmt(small.defaults / 1024, 1)} KB with the defaults, ${fmt(small.noBreaker / 1024, 1)} KB with breaker: false — ` +
        `the difference is the breakers' layer: its LRU starts at 64 slots and doubles up to maxEndpoints)`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft memory-per-endpoint bench — ${machineLine()}\n`);
  printMemory(await runMemory(settings));
}

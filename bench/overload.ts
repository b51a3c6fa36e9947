/**
 * Overload: offered load 3× a server's capacity. A server that takes every request queues the
 * excess; the queue grows by (offered − capacity) a second, every request waits behind it, and
 * once the wait passes the callers' deadline every answer comes too late — goodput collapses to
 * nothing while the server stays 100 % busy working for callers who have gone. weft/server's
 * admission control sheds the excess at the door (503 + `x-weft-shed`, microseconds each), so the
 * requests it admits wait a bounded time and goodput stays at capacity. Targets: with shedding,
 * goodput ≥ 90 % of capacity at 3× offered, and the admitted requests' p99 ≤ 5× the service time.
 *
 * Server (overload-server.ts, a child process): a `node:http` handler that awaits a simulated
 * downstream resource with 4 parallel slots × 10 ms each and a FIFO queue beyond
 * (overload-resource.ts, virtual time, so the capacity is exactly 400 req/s whatever the timers
 * do). Three modes, a fresh child each: `plain` (node:http alone: works every request, even for a
 * caller who left — the collapse baseline), `fixed` (`inbound({ shed: { limit: 6 } })`: the slots
 * + 2 queued), `adaptive` (`inbound({ shed: { adaptive: true } })`). In the inbound modes the
 * handler skips a request whose caller went away or whose deadline passed before it reached a
 * slot (`inboundContext().aborted`, `remainingMs()`): a weft/server feature.
 *
 * Load (this process): open loop, a fixed arrival rate (requests spaced 1000/rate ms, sent from a
 * 1 ms tick, each timed from its scheduled moment so a late tick counts against the row), undici
 * `Pool` with enough connections for every request in flight. Every request has a 500 ms client
 * deadline: sent as `x-weft-timeout-ms` and enforced by an AbortController timer (the request, its
 * socket with it, is aborted at 500 ms). Per child: 1 s at 0.5× unmeasured (JIT, connections, and
 * a server in normal service before the storm), then rows at 0.5× (the machine's floor: same
 * generator, same server, no overload), 1× and 3× capacity.
 *
 * Figures per row: offered req/s; goodput = 2xx answered within the deadline per second, and as
 * % of capacity and × plain's at the same load; shed (503 + x-weft-shed) and timeouts per second;
 * p50 / p99 / max of the admitted (2xx) requests; the queue wait the server measured (p99, max);
 * wasted = slot work done for callers already gone; the adaptive limit (final), minRtt and
 * sampleRtt from the server's `snapshot().admission`, and, for adaptive at 3×, a per-second
 * timeline of them beside the per-second goodput and p99 (to see a limit or a latency that creeps).
 *
 * Run alone: `npx tsx bench/overload.ts [--quick] [--overload-ms=10000] [--overload-ref-ms=4000]
 * [--overload-warmup-ms=1000] [--overload-modes=plain,fixed,adaptive] [--overload-loads=0.5,1,3]
 * [--overload-shed='{"adaptive":true,…}'] [--overload-timeline]`.
 */
import { pathToFileURL } from "node:url";
import { Pool } from "undici";
import { getJson, startChild, type ChildServer } from "./child.js";
import { fmt, machineLine, median, percentile, printTable, readSettings, sleep, type BenchSettings } from "./lib.js";

export const OVERLOAD = {
  slots: 4,
  serviceMs: 10,
  /** The fixed mode's limit: the slots + 2 waiting, so a slot that frees has its next request ready. */
  fixedLimit: 6,
  /** The callers' deadline, ms: sent as x-weft-timeout-ms, enforced client-side. */
  deadlineMs: 500,
  /** Offered load of the judged rows, × capacity. */
  overload: 3,
} as const;
/** With shedding, goodput at 3× offered must stay at least this share of capacity. */
export const OVERLOAD_GOODPUT_TARGET = 0.9;
/** … and the admitted requests' p99 at most this many service times. */
export const OVERLOAD_P99_TARGET = 5;

export type OverloadMode = "plain" | "fixed" | "adaptive";
const OVERLOAD_MODES: readonly OverloadMode[] = ["plain", "fixed", "adaptive"];

export interface OverloadSettings {
  /** Measured time of each 3× row, ms (`--overload-ms=`, `BENCH_OVERLOAD_MS`). */
  readonly overloadMs: number;
  /** Measured time of each 0.5× and 1× row, ms (`--overload-ref-ms=`, `BENCH_OVERLOAD_REF_MS`). */
  readonly refMs: number;
  /** Unmeasured time at 0.5× after each child starts, ms; 0: none (`--overload-warmup-ms=`). */
  readonly warmupMs: number;
  readonly modes: readonly OverloadMode[];
  /** Offered loads, × capacity, run in this order on each child (`--overload-loads=0.5,1,3`). */
  readonly loads: readonly number[];
  /** Overrides the adaptive mode's `shed` option (JSON), for experiments. */
  readonly adaptiveShed: string | undefined;
  /** Print the per-second timeline of every row, not only adaptive at 3×. */
  readonly timeline: boolean;
}

export function readOverloadSettings(
  settings: BenchSettings,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): OverloadSettings {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m !== null) flags.set(m[1] as string, m[2] ?? "true");
  }
  const num = (flag: string, envName: string, full: number, fast: number, min = 1): number => {
    const raw = flags.get(flag) ?? env[envName];
    if (raw === undefined) return settings.quick ? fast : full;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min)
      throw new Error(`bench: --${flag} / ${envName} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`);
    return value;
  };
  const modes = (flags.get("overload-modes") ?? OVERLOAD_MODES.join(",")).split(",");
  for (const m of modes)
    if (!(OVERLOAD_MODES as readonly string[]).includes(m))
      throw new Error(`bench: --overload-modes takes ${OVERLOAD_MODES.join(", ")}, got ${m}`);
  const loads = (flags.get("overload-loads") ?? "0.5,1,3").split(",").map(Number);
  for (const l of loads)
    if (!(l > 0 && l <= 10))
      throw new Error(`bench: --overload-loads takes numbers in (0, 10], got ${flags.get("overload-loads")}`);
  return {
    overloadMs: num("overload-ms", "BENCH_OVERLOAD_MS", 10_000, 3000),
    refMs: num("overload-ref-ms", "BENCH_OVERLOAD_REF_MS", 4000, 1500),
    warmupMs: num("overload-warmup-ms", "BENCH_OVERLOAD_WARMUP_MS", 1000, 500, 0),
    modes: modes as OverloadMode[],
    loads,
    adaptiveShed: flags.get("overload-shed") ?? env.BENCH_OVERLOAD_SHED,
    timeline: flags.has("overload-timeline"),
  };
}

/** One second of a row, by the second its requests were scheduled in. */
export interface OverloadSecond {
  readonly ok: number;
  /** Sorted latencies of that second's 2xx answers, ms. */
  readonly okMs: Float64Array;
  readonly p99Ms: number;
  readonly shed: number;
  readonly timeouts: number;
  /** The server's admission snapshot over that second (medians of its 200 ms samples). */
  readonly limit: number | null;
  readonly minRttMs: number | null;
  readonly sampleRttMs: number | null;
}

export interface OverloadRow {
  readonly mode: OverloadMode;
  readonly name: string;
  /** Offered load, × capacity. */
  readonly load: number;
  readonly durationMs: number;
  readonly sent: number;
  /** 2xx within the deadline. */
  readonly ok: number;
  /** 503 with x-weft-shed. */
  readonly shed: number;
  /** Other statuses (by status). */
  readonly otherStatus: ReadonlyMap<number, number>;
  /** Aborted at the deadline. */
  readonly timeouts: number;
  /** Transport errors other than the deadline's abort (by code). */
  readonly errors: ReadonlyMap<string, number>;
  /** Sorted latencies of the 2xx answers, ms. */
  readonly okMs: Float64Array;
  /** Server side: queue waits of the answered requests (sorted), work for callers gone, work skipped. */
  readonly waitsMs: Float64Array;
  readonly wasted: number;
  readonly skipped: number;
  readonly worked: number;
  /** Server's admission snapshot at the end of the row (null in plain mode). */
  readonly limit: number | null;
  readonly minRttMs: number | null;
  readonly sampleRttMs: number | null;
  readonly seconds: readonly OverloadSecond[];
}

export interface OverloadResult {
  readonly rows: readonly OverloadRow[];
  readonly capacityPerSecond: number;
  readonly settings: OverloadSettings;
  readonly adaptiveShed: string;
}

interface ServerStats {
  readonly answered: number;
  readonly wasted: number;
  readonly worked: number;
  readonly skipped: number;
  readonly waits: number[];
  readonly busy: number;
  readonly queued: number;
  readonly admission: { limit: number; minRttMs: number | null; sampleRttMs: number | null; inflight: number } | null;
  readonly timeline: {
    t: number;
    limit: number | null;
    minRttMs: number | null;
    sampleRttMs: number | null;
    inflight: number;
    queued: number;
  }[];
}

function getStats(port: number, reset: boolean): Promise<ServerStats> {
  return getJson<ServerStats>(port, reset ? "/__stats?reset=1" : "/__stats");
}

interface LoadOutcome {
  readonly sent: number;
  readonly ok: number;
  readonly shed: number;
  readonly otherStatus: Map<number, number>;
  readonly timeouts: number;
  readonly errors: Map<string, number>;
  readonly okMs: Float64Array;
  /** Per scheduled second: 2xx latencies, shed and timeout counts. */
  readonly seconds: { okMs: number[]; shed: number; timeouts: number }[];
}

const TIMED_OUT = new Error("client deadline");

/**
 * Open loop: `rate` requests a second for `durationMs`, each scheduled at start + i × 1000/rate,
 * timed from that moment, aborted `deadlineMs` after it. Resolves when every request has settled.
 */
async function offer(origin: string, rate: number, durationMs: number, deadlineMs: number): Promise<LoadOutcome> {
  const connections = Math.ceil((rate * deadlineMs) / 1000) * 2 + 32;
  const pool = new Pool(origin, {
    connections,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: deadlineMs + 5_000,
    bodyTimeout: deadlineMs + 5_000,
    connectTimeout: 5_000,
  });
  const total = Math.floor((rate * durationMs) / 1000);
  const spacing = 1000 / rate;
  const okMs: number[] = [];
  const seconds = Array.from({ length: Math.ceil(durationMs / 1000) }, () => ({
    okMs: [] as number[],
    shed: 0,
    timeouts: 0,
  }));
  const otherStatus = new Map<number, number>();
  const errors = new Map<string, number>();
  let ok = 0;
  let shed = 0;
  let timeouts = 0;
  let sent = 0;
  let inflight = 0;
  let allSent = false;
  let settled!: () => void;
  const done = new Promise<void>((resolve) => (settled = resolve));
  const start = performance.now();

  const fire = (at: number): void => {
    const second = seconds[
      Math.min(seconds.length - 1, Math.floor((at - start) / 1000))
    ] as LoadOutcome["seconds"][number];
    const controller = new AbortController();
    const leftMs = deadlineMs - (performance.now() - at);
    const timer = setTimeout(() => controller.abort(TIMED_OUT), Math.max(0, leftMs));
    inflight++;
    pool
      .request({
        path: "/work",
        method: "GET",
        headers: { "x-weft-timeout-ms": String(Math.max(1, Math.floor(leftMs))) },
        signal: controller.signal,
      })
      .then(async (res) => {
        await res.body.text();
        const ms = performance.now() - at;
        if (res.statusCode >= 200 && res.statusCode < 300 && ms <= deadlineMs) {
          ok++;
          okMs.push(ms);
          second.okMs.push(ms);
        } else if (res.statusCode === 503 && res.headers["x-weft-shed"] !== undefined) {
          shed++;
          second.shed++;
        } else if (res.statusCode < 300) {
          timeouts++; // answered, but after the deadline (the abort timer ran late)
          second.timeouts++;
        } else otherStatus.set(res.statusCode, (otherStatus.get(res.statusCode) ?? 0) + 1);
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) {
          timeouts++;
          second.timeouts++;
        } else {
          const code = (error as { code?: string }).code ?? (error as Error).name ?? "error";
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      })
      .finally(() => {
        clearTimeout(timer);
        if (--inflight === 0 && allSent) settled();
      });
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * spacing <= now) fire(start + sent++ * spacing);
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  allSent = true;
  if (inflight > 0) await done;
  await pool.destroy();
  return { sent, ok, shed, otherStatus, timeouts, errors, okMs: Float64Array.from(okMs).sort(), seconds };
}

function rowName(mode: OverloadMode, load: number, adaptiveShed: string): string {
  const what =
    mode === "plain"
      ? "plain node:http (no shedding)"
      : mode === "fixed"
        ? `inbound shed: { limit: ${OVERLOAD.fixedLimit} }`
        : `inbound shed: ${adaptiveShed.replace(/"/g, "").replace(/:/g, ": ").replace(/,/g, ", ").replace(/^\{/, "{ ").replace(/\}$/, " }")}`;
  return `${load}× — ${what}`;
}

/** Waits until the server has nothing queued or in a slot (bounded): rows start from an idle server. */
async function untilIdle(port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await getStats(port, false);
    if (stats.busy === 0 && stats.queued === 0) return;
    if (performance.now() > deadline) return;
    await sleep(50);
  }
}

function medianOrNull(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : median(known);
}

export async function runOverload(
  settings: BenchSettings,
  options: OverloadSettings = readOverloadSettings(settings),
): Promise<OverloadResult> {
  const capacityPerSecond = (OVERLOAD.slots * 1000) / OVERLOAD.serviceMs;
  const adaptiveShed = options.adaptiveShed ?? JSON.stringify({ adaptive: true });
  const rows: OverloadRow[] = [];
  for (const mode of options.modes) {
    const args = [
      `--mode=${mode}`,
      `--slots=${OVERLOAD.slots}`,
      `--service-ms=${OVERLOAD.serviceMs}`,
      `--limit=${OVERLOAD.fixedLimit}`,
    ];
    if (mode === "adaptive") args.push(`--shed=${adaptiveShed}`);
    const child: ChildServer = await startChild("./overload-server.ts", args);
    const port = child.ports[0] as number;
    const origin = `http://127.0.0.1:${port}`;
    try {
      if (options.warmupMs > 0) await offer(origin, capacityPerSecond * 0.5, options.warmupMs, OVERLOAD.deadlineMs);
      for (const load of options.loads) {
        await untilIdle(port, 5_000);
        await getStats(port, true);
        const durationMs = load > 1 ? options.overloadMs : options.refMs;
        const outcome = await offer(origin, capacityPerSecond * load, durationMs, OVERLOAD.deadlineMs);
        const stats = await getStats(port, false);
        const seconds = outcome.seconds.map((s, i): OverloadSecond => {
          const samples = stats.timeline.filter((p) => p.t >= i * 1000 && p.t < (i + 1) * 1000);
          const sorted = Float64Array.from(s.okMs).sort();
          return {
            ok: s.okMs.length,
            okMs: sorted,
            p99Ms: percentile(sorted, 99),
            shed: s.shed,
            timeouts: s.timeouts,
            limit: medianOrNull(samples.map((p) => p.limit)),
            minRttMs: medianOrNull(samples.map((p) => p.minRttMs)),
            sampleRttMs: medianOrNull(samples.map((p) => p.sampleRttMs)),
          };
        });
        rows.push({
          mode,
          name: rowName(mode, load, adaptiveShed),
          load,
          durationMs,
          sent: outcome.sent,
          ok: outcome.ok,
          shed: outcome.shed,
          otherStatus: outcome.otherStatus,
          timeouts: outcome.timeouts,
          errors: outcome.errors,
          okMs: outcome.okMs,
          waitsMs: Float64Array.from(stats.waits).sort(),
          wasted: stats.wasted,
          skipped: stats.skipped,
          worked: stats.worked,
          limit: stats.admission?.limit ?? null,
          minRttMs: stats.admission?.minRttMs ?? null,
          sampleRttMs: stats.admission?.sampleRttMs ?? null,
          seconds,
        });
      }
    } finally {
      await child.stop();
    }
  }
  return { rows, capacityPerSecond, settings: options, adaptiveShed };
}

/** Goodput of a row, req/s. */
export function goodput(row: OverloadRow): number {
  return row.ok / (row.durationMs / 1000);
}

export function p99(row: OverloadRow): number {
  return percentile(row.okMs, 99);
}

/** p99 of the admitted requests scheduled in seconds [from, to) of the row. */
export function p99Of(row: OverloadRow, from: number, to = row.seconds.length): number {
  const slice = row.seconds.slice(from, to);
  const all = new Float64Array(slice.reduce((sum, s) => sum + s.okMs.length, 0));
  let at = 0;
  for (const s of slice) {
    all.set(s.okMs, at);
    at += s.okMs.length;
  }
  return percentile(all.sort(), 99);
}

/**
 * p99 of the admitted requests after the first second: the steady state, once a controller had
 * time to react to the overload's onset (the first second is `p99Of(row, 0, 1)`).
 */
export function steadyP99(row: OverloadRow): number {
  return row.seconds.length > 1 ? p99Of(row, 1) : p99(row);
}

/** The p99 of the admitted requests scheduled in each third of the row after its first second (creep shows as a rising series). */
export function p99ByThird(row: OverloadRow): number[] {
  const n = row.seconds.length - 1;
  if (n < 3) return [steadyP99(row)];
  return [0, 1, 2].map((k) => p99Of(row, 1 + Math.floor((k * n) / 3), 1 + Math.floor(((k + 1) * n) / 3)));
}

export function findRow(result: OverloadResult, mode: OverloadMode, load: number): OverloadRow | undefined {
  return result.rows.find((r) => r.mode === mode && r.load === load);
}

export function printOverload(result: OverloadResult): void {
  const cap = result.capacityPerSecond;
  const perSec = (n: number, row: OverloadRow): string => fmt(n / (row.durationMs / 1000));
  const rows = [...result.rows].sort(
    (a, b) => a.load - b.load || OVERLOAD_MODES.indexOf(a.mode) - OVERLOAD_MODES.indexOf(b.mode),
  );
  printTable(
    [
      `capacity ${fmt(cap)} req/s (${OVERLOAD.slots} slots × ${OVERLOAD.serviceMs} ms), deadline ${OVERLOAD.deadlineMs} ms`,
      "offered/s",
      "goodput/s",
      "% capacity",
      "× plain",
      "shed/s",
      "timeouts/s",
      "p50 ms",
      "p99 ms",
      "p99 after 1 s",
      "max ms",
      "wait p99/max",
      "wasted",
      "skipped",
      "limit",
      "other",
    ],
    rows.map((r) => {
      const plain = findRow(result, "plain", r.load);
      const other = [
        ...[...r.otherStatus].map(([s, n]) => `${fmt(n)}×${s}`),
        ...[...r.errors].map(([c, n]) => `${fmt(n)} ${c}`),
      ].join(", ");
      return [
        r.name,
        perSec(r.sent, r),
        fmt(goodput(r)),
        `${fmt((goodput(r) / cap) * 100, 1)} %`,
        r.mode === "plain" || plain === undefined
          ? ""
          : goodput(plain) > 0
            ? `${(goodput(r) / goodput(plain)).toFixed(2)}×`
            : "∞",
        perSec(r.shed, r),
        perSec(r.timeouts, r),
        fmt(percentile(r.okMs, 50), 1),
        fmt(p99(r), 1),
        r.seconds.slice(1).some((x) => x.ok > 0) ? fmt(steadyP99(r), 1) : "no 2xx",
        fmt(r.okMs.at(-1) ?? Number.NaN, 1),
        `${fmt(percentile(r.waitsMs, 99), 1)} / ${fmt(r.waitsMs.at(-1) ?? Number.NaN, 1)}`,
        fmt(r.wasted),
        fmt(r.skipped),
        r.limit === null ? "" : fmt(r.limit),
        other || "0",
      ];
    }),
  );
  console.log(
    `(goodput = 2xx within the deadline per second; p50/p99/max: admitted (2xx) requests, from their scheduled send; p99 after 1 s: of those scheduled after the row's first second (the steady state); wait = the server's queue wait of the answered requests, ms; ` +
      `wasted = slot work done for callers already gone; skipped = queued requests weft/server dropped because the caller left or its deadline passed; limit = admission limit at the end)`,
  );
  for (const r of rows) {
    if (!(result.settings.timeline || (r.mode === "adaptive" && r.load > 1))) continue;
    console.log(
      `\nper second, ${r.name} (by scheduled second; limit / minRtt / sampleRtt: medians of the server's 200 ms snapshots):`,
    );
    printTable(
      ["s", "goodput", "p99 ms", "shed", "timeouts", "limit", "minRtt ms", "sampleRtt ms"],
      r.seconds.map((s, i) => [
        String(i + 1),
        fmt(s.ok),
        fmt(s.p99Ms, 1),
        fmt(s.shed),
        fmt(s.timeouts),
        s.limit === null ? "" : fmt(s.limit),
        s.minRttMs === null ? "" : fmt(s.minRttMs, 2),
        s.sampleRttMs === null ? "" : fmt(s.sampleRttMs, 2),
      ]),
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  const options = readOverloadSettings(settings);
  console.log(`weft overload bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  const result = await runOverload(settings, options);
  printOverload(result);
}

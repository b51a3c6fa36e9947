/**
 * `npm run bench` — the whole suite in one run: in-memory overhead per call, then loopback
 * throughput and latency, then a summary that marks each target from DESIGN.md's "Hot path"
 * pass or fail. Ratios are computed within this run, because on a shared 2-core machine the
 * absolute numbers move between runs while the ratios mostly do not.
 *
 * Flags (also as BENCH_* env, see lib.ts): `--quick` (a smoke run of ~15 s), `--duration=ms`,
 * `--warmup=ms`, `--rounds=n`, `--concurrency=n`, `--only=overhead|throughput`, `--layers` (adds
 * the per-layer cost breakdown of bench/layers.ts). Example: `npm run bench -- --quick`.
 *
 * The exit code is 0 when every part ran, whatever the targets say: a miss is a finding to read,
 * not a crash.
 */
import { availableParallelism, loadavg } from "node:os";
import { fmt, machineLine, median, readSettings } from "./lib.js";
import { runLayers } from "./layers.js";
import { OVERHEAD_TARGET_US, printOverhead, runOverhead, type OverheadResult } from "./overhead.js";
import { ROW, printThroughput, runThroughput, type ThroughputResult } from "./throughput.js";

/** weft.request must keep this share of raw undici.request's throughput. */
const REQUEST_TARGET = 0.9;
/** weft.fetch must be at least as fast as the global fetch it replaces. */
const FETCH_TARGET = 1.0;

const settings = readSettings();
const started = performance.now();
console.log(`weft bench — ${machineLine()}`);
console.log(
  settings.quick
    ? "quick mode: short rows, rough figures\n"
    : `throughput: ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms per row in ${settings.rounds} interleaved slices; overhead: median of ${settings.overheadRounds} rounds\n`,
);

let overhead: OverheadResult | undefined;
let throughput: ThroughputResult | undefined;
if (settings.only !== "throughput") {
  console.log("## 1. Overhead per call, in memory (median of rounds)\n");
  overhead = await runOverhead(settings);
  printOverhead(overhead);
  console.log();
}
if (settings.layers) {
  console.log("## 1b. Where the overhead goes (one layer removed at a time)\n");
  await runLayers(settings);
  console.log();
}
if (settings.only !== "overhead") {
  console.log("## 2. Loopback throughput and latency (server in another process)\n");
  throughput = await runThroughput(settings);
  printThroughput(throughput);
  console.log();
}

console.log("## Summary\n");
const mark = (ok: boolean): string => (ok ? "PASS" : "FAIL");
if (overhead !== undefined) {
  console.log(`[${mark(overhead.weftNetUs <= OVERHEAD_TARGET_US)}] weft default stack: ${fmt(overhead.weftNetUs, 2)} µs/call over bare await (target ≤ ${OVERHEAD_TARGET_US} µs)`);
  console.log(`[info] with attemptMs 500 + totalMs 2000: ${fmt(overhead.weftTimeoutNetUs, 2)} µs/call over bare`);
  const opossum = overhead.rows.find((r) => r.name.startsWith("opossum"));
  const cockatiel = overhead.rows.find((r) => r.name.startsWith("cockatiel wrap(retry, breaker, timeout)"));
  if (opossum && cockatiel) {
    console.log(`[info] for comparison: opossum alone ${fmt((opossum.ns - overhead.bareNs) / 1000, 2)} µs, cockatiel retry+breaker+timeout ${fmt((cockatiel.ns - overhead.bareNs) / 1000, 2)} µs over bare`);
  }
}
if (throughput !== undefined) {
  const row = (name: string) => throughput!.rows.find((r) => r.name === name && r.skipped === undefined);
  /**
   * a/b as the median of per-round ratios (each from the same round's slices, run back to back),
   * with the min–max over rounds: a burst from a neighbour on this shared machine moves one
   * round, not the verdict. Falls back to the pooled ratio when there is a single round.
   */
  const compare = (a: string, b: string): { value: number; text: string } => {
    const sa = row(a)?.slices ?? [];
    const sb = row(b)?.slices ?? [];
    const ratios = sa.map((v, i) => v / (sb[i] ?? NaN)).filter(Number.isFinite);
    const pooled = (row(a)?.reqPerSec ?? NaN) / (row(b)?.reqPerSec ?? NaN);
    if (ratios.length < 2) return { value: pooled, text: `${pooled.toFixed(2)}×` };
    const value = median(ratios);
    return { value, text: `${value.toFixed(2)}× (median of ${ratios.length} rounds, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; pooled ${pooled.toFixed(2)}×)` };
  };
  const request = compare(ROW.weftRequest, ROW.undici);
  const fetchRatio = compare(ROW.weftFetch, ROW.fetch);
  console.log(`[${mark(request.value >= REQUEST_TARGET)}] weft.request vs undici.request req/s: ${request.text}; target ≥ ${REQUEST_TARGET.toFixed(2)}×`);
  console.log(`[${mark(fetchRatio.value >= FETCH_TARGET)}] weft.fetch vs global fetch req/s: ${fetchRatio.text}; target ≥ ${FETCH_TARGET.toFixed(2)}×`);
  console.log(`[info] weft.request vs undici Pool.request (the call its transport makes): ${compare(ROW.weftRequest, ROW.pool).text}`);
  const cpu = (name: string): number => row(name)?.cpuUsPerCall ?? NaN;
  console.log(
    `[info] client CPU per call: weft.request ${fmt(cpu(ROW.weftRequest), 1)} µs vs Pool.request ${fmt(cpu(ROW.pool), 1)} µs (+${fmt(cpu(ROW.weftRequest) - cpu(ROW.pool), 1)}), ` +
      `undici.request ${fmt(cpu(ROW.undici), 1)} µs; weft.fetch ${fmt(cpu(ROW.weftFetch), 1)} µs vs fetch ${fmt(cpu(ROW.fetch), 1)} µs`,
  );
  if (row(ROW.haproxy) === undefined) console.log(`[skip] sidecar hop: ${throughput.rows.find((r) => r.name === ROW.haproxy)?.skipped ?? "not measured"}`);
  else {
    console.log(`[info] sidecar hop, undici.request via HAProxy vs direct: ${compare(ROW.haproxy, ROW.undici).text}`);
    console.log(`[info] weft.request vs undici.request via HAProxy: ${compare(ROW.weftRequest, ROW.haproxy).text}`);
  }
}
const [load1] = loadavg();
if (load1 !== undefined && load1 > availableParallelism() + 1) {
  console.log(`\n[warn] load average ${load1.toFixed(1)} on ${availableParallelism()} cpus (this bench alone makes ~2): other processes likely competed with it; rerun before trusting a FAIL`);
}
console.log(`\n(total ${((performance.now() - started) / 1000).toFixed(1)} s; shared 2-core machine: trust ratios, not absolute numbers)`);

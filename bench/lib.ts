/**
 * Shared bench plumbing: settings (flags and env, so a quick mode exists), statistics and table
 * printing. Kept apart so `overhead.ts` and `throughput.ts` stay about what they measure.
 *
 * The machines this runs on are shared and have 2 cores: absolute numbers move from run to run,
 * ratios against a baseline measured in the same run do not move much. Every table therefore
 * prints a ratio column, and the overhead bench interleaves its rows round by round so that a
 * slow spell of the machine hits every row, not one.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";

export const BENCH_PARTS = [
  "overhead",
  "throughput",
  "storm",
  "tail",
  "balancers",
  "pick",
  "memory",
  "discovery",
  "overload",
  "inbound",
  "tls",
  "hotpath",
  "routing",
  "http2",
  "grpc",
  "policy",
] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

export interface BenchSettings {
  /** `--quick`: short rows, for a smoke run (a few seconds). Figures are rougher. */
  readonly quick: boolean;
  /** Throughput: measured time per row, ms, split over the rounds (`--duration=` or `BENCH_DURATION_MS`). */
  readonly durationMs: number;
  /** Throughput: warm-up before a row's first slice, ms (`--warmup=` or `BENCH_WARMUP_MS`). */
  readonly warmupMs: number;
  /** Throughput: interleaved slices per row, the row order reversed every other round (`--rounds=`, `BENCH_ROUNDS`). */
  readonly rounds: number;
  /** Throughput: requests in flight (`--concurrency=`, `BENCH_CONCURRENCY`). */
  readonly concurrency: number;
  /** Overhead: measured rounds per row (`--overhead-rounds=`, `BENCH_OVERHEAD_ROUNDS`). */
  readonly overheadRounds: number;
  /** Overhead: target time of one measured round of one row, ms (`--round-ms=`, `BENCH_ROUND_MS`). */
  readonly roundMs: number;
  /** `--only=overhead|throughput|storm|tail|balancers|pick|memory|discovery|overload|inbound|tls|hotpath|routing`: run that part alone; every part when absent. */
  readonly only: BenchPart | undefined;
  /** Retry storm: calls offered per row (`--storm-calls=`, `BENCH_STORM_CALLS`). */
  readonly stormCalls: number;
  /** Tail at Scale: measured calls per row, over all rounds (`--tail-calls=`, `BENCH_TAIL_CALLS`). */
  readonly tailCalls: number;
  /** Tail at Scale: interleaved rounds per row (`--tail-rounds=`, `BENCH_TAIL_ROUNDS`). */
  readonly tailRounds: number;
  /** `--layers`: also time the weft stack with one layer removed at a time. */
  readonly layers: boolean;
  /** Beyond Round Robin: measured time per row, ms; one replica is slow for its middle third (`--lb-row-ms=`, `BENCH_LB_ROW_MS`). */
  readonly lbRowMs: number;
  /** Beyond Round Robin: unmeasured warm-up of each row's fresh client, ms (`--lb-warmup-ms=`, `BENCH_LB_WARMUP_MS`). */
  readonly lbWarmupMs: number;
  /** Pick cost: measured rounds per row, median reported (`--pick-rounds=`, `BENCH_PICK_ROUNDS`). */
  readonly pickRounds: number;
  /** Memory per endpoint: endpoints in the measured client (`--memory-endpoints=`, `BENCH_MEMORY_ENDPOINTS`). */
  readonly memoryEndpoints: number;
  /** Discovery: etcd puts (and as many deletes) timed to the client's endpoint set (`--discovery-changes=`, `BENCH_DISCOVERY_CHANGES`). */
  readonly discoveryChanges: number;
  /** Discovery: DNS record changes timed, each at a random phase of the refresh (`--dns-changes=`, `BENCH_DNS_CHANGES`). */
  readonly dnsChanges: number;
  /** TLS: sequential calls per new-connection row, each on a fresh connection, over all rounds (`--tls-calls=`, `BENCH_TLS_CALLS`). */
  readonly tlsCalls: number;
  /** Routing: calls per mirroring row, over all rounds (`--routing-calls=`, `BENCH_ROUTING_CALLS`). */
  readonly routingCalls: number;
  /** Routing: interleaved rounds of the mirroring rows (`--routing-rounds=`, `BENCH_ROUTING_ROUNDS`). */
  readonly routingRounds: number;
  /** Routing: etcd config puts timed to every client's applied version (`--config-changes=`, `BENCH_CONFIG_CHANGES`). */
  readonly configChanges: number;
}

/** Reads flags (`--name=value`, `--quick`) and `BENCH_*` environment variables. */
export function readSettings(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): BenchSettings {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null)
      throw new Error(`bench: unknown argument ${JSON.stringify(arg)} (flags look like --quick, --duration=3000)`);
    flags.set(m[1] as string, m[2] ?? "true");
  }
  const quick = flags.has("quick") || env.BENCH_QUICK === "1";
  const num = (flag: string, envName: string, full: number, fast: number): number => {
    const raw = flags.get(flag) ?? env[envName];
    if (raw === undefined) return quick ? fast : full;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`bench: --${flag} / ${envName} must be a positive number, got ${JSON.stringify(raw)}`);
    return value;
  };
  const only = flags.get("only");
  if (only !== undefined && !(BENCH_PARTS as readonly string[]).includes(only))
    throw new Error(`bench: --only must be one of ${BENCH_PARTS.join(", ")}, got ${only}`);
  return {
    quick,
    durationMs: num("duration", "BENCH_DURATION_MS", 3000, 1000),
    warmupMs: num("warmup", "BENCH_WARMUP_MS", 500, 250),
    rounds: Math.round(num("rounds", "BENCH_ROUNDS", 6, 2)),
    concurrency: Math.round(num("concurrency", "BENCH_CONCURRENCY", 32, 32)),
    overheadRounds: Math.round(num("overhead-rounds", "BENCH_OVERHEAD_ROUNDS", 9, 5)),
    roundMs: num("round-ms", "BENCH_ROUND_MS", 150, 50),
    only: only as BenchPart | undefined,
    stormCalls: Math.round(num("storm-calls", "BENCH_STORM_CALLS", 2000, 500)),
    tailCalls: Math.round(num("tail-calls", "BENCH_TAIL_CALLS", 10_000, 2000)),
    tailRounds: Math.round(num("tail-rounds", "BENCH_TAIL_ROUNDS", 4, 2)),
    layers: flags.has("layers"),
    lbRowMs: num("lb-row-ms", "BENCH_LB_ROW_MS", 7000, 1500),
    lbWarmupMs: num("lb-warmup-ms", "BENCH_LB_WARMUP_MS", 1000, 250),
    pickRounds: Math.round(num("pick-rounds", "BENCH_PICK_ROUNDS", 7, 3)),
    memoryEndpoints: Math.round(num("memory-endpoints", "BENCH_MEMORY_ENDPOINTS", 10_000, 10_000)),
    discoveryChanges: Math.round(num("discovery-changes", "BENCH_DISCOVERY_CHANGES", 200, 50)),
    dnsChanges: Math.round(num("dns-changes", "BENCH_DNS_CHANGES", 15, 6)),
    tlsCalls: Math.round(num("tls-calls", "BENCH_TLS_CALLS", 600, 100)),
    routingCalls: Math.round(num("routing-calls", "BENCH_ROUTING_CALLS", 20_000, 3000)),
    routingRounds: Math.round(num("routing-rounds", "BENCH_ROUTING_ROUNDS", 10, 5)),
    configChanges: Math.round(num("config-changes", "BENCH_CONFIG_CHANGES", 50, 20)),
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * `a` / `b` round by round — each round ran one slice of each row back to back, so a burst from a
 * neighbour on this shared machine moves one round, not the verdict —: the ratios of the rounds
 * both have, their median and their range (NaN with none).
 */
export function perRound(
  a: readonly number[],
  b: readonly number[],
): { readonly ratios: readonly number[]; readonly median: number; readonly min: number; readonly max: number } {
  const ratios = a.map((v, i) => v / (b[i] ?? Number.NaN)).filter(Number.isFinite);
  if (ratios.length === 0) return { ratios, median: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { ratios, median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Prints rows as an aligned text table (first column left-aligned, the rest right-aligned). */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(value: number, base: number): string {
  return Number.isFinite(value) && Number.isFinite(base) && base > 0 ? `${(value / base).toFixed(2)}×` : "—";
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One line naming the machine and the weft revision, so pasted output says where it came from. */
export function machineLine(): string {
  return `node ${process.version}, ${process.platform} ${process.arch}, ${availableParallelism()} cpus, weft ${revision()}, ${new Date().toISOString()}`;
}

/** `git` HEAD, marked `+dirty` when src/ has uncommitted changes (others may be editing it). */
function revision(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain", "--", "src"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim() !== "";
    return head + (dirty ? "+dirty" : "");
  } catch {
    return "(no git)";
  }
}

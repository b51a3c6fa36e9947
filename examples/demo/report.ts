/**
 * What the demo prints on stdout: the setup, the two runs side by side, and a one-line verdict.
 * Pure formatting: every number comes in as an argument.
 */
import type { Behaviour } from "./replica.js";
import { percentile, type WorkloadResult } from "./workload.js";

/** One client's run, as the table shows it. */
export interface Column {
  readonly name: string;
  readonly result: WorkloadResult;
  /** Attempts sent per logical request (1.00 without retries or hedges). */
  readonly attemptsPerRequest: number;
  /** Attempts each replica received. */
  readonly sentTo: Readonly<Record<Behaviour, number>>;
}

export function header(requests: number, concurrency: number): string {
  return [
    "weft demo — the same workload, through plain fetch and through a weft client",
    "",
    "  3 replicas of one HTTP service, each in its own process on 127.0.0.1, serving through weft/server's inbound():",
    "    healthy  answers 200 in 1–3 ms",
    "    slow     like healthy, but 10 % of answers take 1 s",
    "    flaky    like healthy, but 30 % of answers are a fast 503",
    `  workload: ${requests} GET requests, ${concurrency} in flight, each body read to the end`,
    "    plain fetch: round-robin over the 3 URLs (what a naive client does)",
    "    weft:        createClient({ discovery: staticDiscovery(urls), hedge: { percentile: 95 } }): defaults (p2c peak-EWMA,\n                 retries within a budget, per-endpoint breakers) plus hedging at the p95 latency",
  ].join("\n");
}

const BEHAVIOURS: readonly Behaviour[] = ["healthy", "slow", "flaky"];

export function table(columns: readonly Column[]): string {
  const rows: [string, ...string[]][] = [
    ["", ...columns.map((c) => c.name)],
    ["success (2xx)", ...columns.map((c) => pct(successShare(c.result)))],
    ["p50 latency", ...columns.map((c) => ms(percentile(c.result.latenciesMs, 50)))],
    ["p99 latency", ...columns.map((c) => ms(percentile(c.result.latenciesMs, 99)))],
    ["p99.9 latency", ...columns.map((c) => ms(percentile(c.result.latenciesMs, 99.9)))],
    ["attempts / request", ...columns.map((c) => c.attemptsPerRequest.toFixed(2))],
    ["total time", ...columns.map((c) => `${(c.result.totalMs / 1000).toFixed(2)} s`)],
    ["throughput", ...columns.map((c) => `${Math.round(c.result.requests / (c.result.totalMs / 1000))} req/s`)],
    ...BEHAVIOURS.map((b): [string, ...string[]] => [
      `sent to ${b}`,
      ...columns.map((c) => share(c.sentTo[b], c.result.requests)),
    ]),
  ];
  const firstWidth = Math.max(...rows.map((r) => r[0].length));
  const widths = columns.map((_, i) => Math.max(...rows.map((r) => (r[i + 1] ?? "").length)) + 4);
  const lines = rows.map(
    (r) =>
      "  " +
      r[0].padEnd(firstWidth) +
      r
        .slice(1)
        .map((cell, i) => cell.padStart(widths[i] ?? 0))
        .join(""),
  );
  const errors = columns
    .filter((c) => c.result.errors > 0)
    .map((c) => `  ${c.name}: ${c.result.errors} calls threw, first: ${describe(c.result.firstError)}`);
  return [...lines, ...errors].join("\n");
}

/**
 * One line: is the weft column ahead of the baseline on success share and p99? Differences within
 * noise (half a point of success, 10 % of p99) are called a tie rather than a win.
 */
export function verdict(baseline: Column, weft: Column): string {
  const sBase = successShare(baseline.result);
  const sWeft = successShare(weft.result);
  const success = compare(sWeft - sBase > 0.005, sBase - sWeft > 0.005, `${pct(sWeft)} vs ${pct(sBase)}`);
  const tail = (p: number): string => {
    const base = percentile(baseline.result.latenciesMs, p);
    const mine = percentile(weft.result.latenciesMs, p);
    return compare(
      mine < base * 0.9,
      mine > base * 1.1,
      `${ms(mine)} vs ${ms(base)}${mine < base * 0.5 ? `, ${(base / mine).toFixed(0)}× lower` : ""}`,
    );
  };
  return `verdict: weft vs plain fetch — success: ${success}; p99: ${tail(99)}; p99.9: ${tail(99.9)}.`;
}

function compare(ahead: boolean, behind: boolean, numbers: string): string {
  return `${ahead ? "weft ahead" : behind ? "weft BEHIND" : "about the same"} (${numbers})`;
}

function successShare(result: WorkloadResult): number {
  return result.requests === 0 ? 0 : result.successes / result.requests;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function ms(valueMs: number): string {
  return `${valueMs < 10 ? valueMs.toFixed(2) : valueMs.toFixed(0)} ms`;
}

function share(count: number, total: number): string {
  return `${count} (${total === 0 ? 0 : Math.round((count / total) * 100)} %)`;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${(error as { code?: string }).code ?? error.name}: ${error.message}`;
  return String(error);
}

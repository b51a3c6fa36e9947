/**
 * `policy().execute` overhead, in memory: what weft's resilience costs around an async function
 * that resolves at once (a database or queue call whose I/O costs nothing), next to cockatiel's
 * same policies. The target (issue "Every outbound call"): weft's policy adds at most 1 µs per
 * call over cockatiel's, without timeouts and with them.
 *
 * "The same policies": 3 attempts, a breaker and, in the second pair, a 500 ms per-run and a
 * 2000 ms total timeout. Weft's retry carries its budget (a deposit per call) and its breaker is
 * a rolling error-percentage window; cockatiel's closest is `SamplingBreaker` (the row the target
 * reads), and overhead.ts's `ConsecutiveBreaker(5)` is printed as a reference. Functions that
 * take no parameter get no signal from weft (`fn.length`); one more row gives the function a
 * signal, which cockatiel makes per call only in its timeout policy.
 *
 * Method: overhead.ts's `measureRows` — warm-up, calibration, rows interleaved round by round,
 * median ns/call per row — so a noisy neighbour slows every row alike.
 *
 * Run alone: `npx tsx bench/policy.ts [--quick]`.
 */
import { pathToFileURL } from "node:url";
import {
  ConsecutiveBreaker,
  SamplingBreaker,
  TimeoutStrategy,
  circuitBreaker,
  handleAll,
  retry,
  timeout,
  wrap,
} from "cockatiel";
import { policy } from "weft";
import { fmt, machineLine, printTable, readSettings, type BenchSettings } from "./lib.js";
import { measureRows, type OverheadRow } from "./overhead.js";

/** µs per call weft's policy may add over cockatiel's same policies. */
export const POLICY_TARGET_US = 1;

export interface PolicyBenchResult {
  readonly rows: readonly { readonly name: string; readonly ns: number }[];
  readonly bareNs: number;
  /** µs per call over bare: weft `policy({ retry, breaker })`, and cockatiel's same (SamplingBreaker). */
  readonly weftUs: number;
  readonly cockatielUs: number;
  /** The same two with a per-run and a total timeout. */
  readonly weftTimeoutUs: number;
  readonly cockatielTimeoutUs: number;
  /** weft − cockatiel, µs per call, without and with timeouts: the target reads these. */
  readonly overCockatielUs: number;
  readonly overCockatielTimeoutUs: number;
  readonly pass: boolean;
}

const VALUE = Object.freeze({ id: 42 });
/** The function every row runs: resolves at once. */
const fn = async (): Promise<typeof VALUE> => VALUE;
/** The same, declaring a signal (weft then makes one per run). */
const fnWithSignal = async (_signal: AbortSignal): Promise<typeof VALUE> => VALUE;

const RETRY = { maxAttempts: 3 };
const BREAKER = { errorThresholdPercentage: 50, resetTimeoutMs: 5000, volumeThreshold: 10, rollingWindowMs: 10_000 };
const TIMEOUT = { attemptMs: 500, totalMs: 2000 };

function cockatielRetry(): ReturnType<typeof retry> {
  // cockatiel counts retries after the first attempt: 2 retries = weft's 3 attempts.
  return retry(handleAll, { maxAttempts: 2 });
}

function sampling(): ReturnType<typeof circuitBreaker> {
  // Weft's breaker: more than 50 % failures over 10 s, with at least 10 calls (1/s over 10 s), 5 s open.
  return circuitBreaker(handleAll, {
    halfOpenAfter: 5000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 1 }),
  });
}

export async function runPolicyBench(settings: BenchSettings): Promise<PolicyBenchResult> {
  const weft = policy({ name: "bench", retry: RETRY, breaker: BREAKER });
  const weftTimeout = policy({ name: "bench-timeout", retry: RETRY, breaker: BREAKER, timeout: TIMEOUT });
  const cockatiel = wrap(cockatielRetry(), sampling());
  const cockatielConsecutive = wrap(
    cockatielRetry(),
    circuitBreaker(handleAll, { halfOpenAfter: 5000, breaker: new ConsecutiveBreaker(5) }),
  );
  const cockatielTimeout = wrap(
    timeout(TIMEOUT.totalMs, TimeoutStrategy.Aggressive),
    cockatielRetry(),
    sampling(),
    timeout(TIMEOUT.attemptMs, TimeoutStrategy.Aggressive),
  );
  // Checked once: every row returns the function's value.
  for (const call of [
    () => weft.execute(fn),
    () => weftTimeout.execute(fnWithSignal),
    () => cockatiel.execute(fn),
    () => cockatielTimeout.execute(fn),
  ]) {
    if ((await call()) !== VALUE) throw new Error("policy bench: a row did not return the function's value");
  }

  const rows: OverheadRow[] = [
    { name: "bare await fn()", call: fn },
    { name: "weft policy({ retry, breaker })", call: () => weft.execute(fn) },
    { name: "cockatiel wrap(retry, breaker) [SamplingBreaker]", call: () => cockatiel.execute(fn) },
    { name: "cockatiel wrap(retry, breaker) [ConsecutiveBreaker, ref]", call: () => cockatielConsecutive.execute(fn) },
    { name: "weft policy({ retry, breaker, timeout })", call: () => weftTimeout.execute(fn) },
    { name: "cockatiel wrap(timeout, retry, breaker, timeout)", call: () => cockatielTimeout.execute(fn) },
    { name: "weft policy({ retry, breaker, timeout }), fn(signal)", call: () => weftTimeout.execute(fnWithSignal) },
  ];
  try {
    const ns = await measureRows(rows, settings);
    const at = (i: number): number => ns[i] as number;
    const bareNs = at(0);
    const us = (i: number): number => (at(i) - bareNs) / 1000;
    const overCockatielUs = us(1) - us(2);
    const overCockatielTimeoutUs = us(4) - us(5);
    return {
      rows: rows.map((r, i) => ({ name: r.name, ns: at(i) })),
      bareNs,
      weftUs: us(1),
      cockatielUs: us(2),
      weftTimeoutUs: us(4),
      cockatielTimeoutUs: us(5),
      overCockatielUs,
      overCockatielTimeoutUs,
      pass: overCockatielUs <= POLICY_TARGET_US && overCockatielTimeoutUs <= POLICY_TARGET_US,
    };
  } finally {
    await weft.close();
    await weftTimeout.close();
  }
}

export function printPolicyBench(result: PolicyBenchResult): void {
  printTable(
    ["policy().execute, in memory, sequential awaits", "ns/call", "over bare µs", "× bare"],
    result.rows.map((r, i) => [
      r.name,
      fmt(r.ns),
      i === 0 ? "" : fmt((r.ns - result.bareNs) / 1000, 2),
      (r.ns / result.bareNs).toFixed(1) + "×",
    ]),
  );
  const verdict = (us: number): string => `${us <= POLICY_TARGET_US ? "pass" : "FAIL"}: ${fmt(us, 2)} µs`;
  console.log(
    `\ntarget: weft's policy ≤ ${POLICY_TARGET_US} µs/call over cockatiel's same policies — ` +
      `retry + breaker ${verdict(result.overCockatielUs)}; with timeouts ${verdict(result.overCockatielTimeoutUs)}`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft policy bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printPolicyBench(await runPolicyBench(settings));
}

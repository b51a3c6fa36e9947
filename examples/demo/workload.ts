/**
 * The workload: `requests` calls with at most `concurrency` in flight (a closed loop, as a
 * connection-pooled caller behaves), each timed until its body has been read to the end, since
 * a response the caller cannot use yet is not an answer.
 */
import { performance } from "node:perf_hooks";

/** Sends one request, reads its whole body, and resolves with the HTTP status. */
export type Send = () => Promise<number>;

export interface WorkloadOptions {
  readonly requests: number;
  readonly concurrency: number;
  /** Called after each completed request with the number completed so far. */
  readonly onProgress?: (done: number) => void;
}

export interface WorkloadResult {
  readonly requests: number;
  /** Answers with a 2xx status. */
  readonly successes: number;
  /** Calls that threw instead of answering (a reset, a timeout). */
  readonly errors: number;
  /** Per-request latency, ms, sorted ascending. */
  readonly latenciesMs: Float64Array;
  readonly totalMs: number;
  /** The first error thrown, to show what went wrong. */
  readonly firstError: unknown;
}

export async function runWorkload(send: Send, options: WorkloadOptions): Promise<WorkloadResult> {
  const { requests, concurrency, onProgress } = options;
  const latenciesMs = new Float64Array(requests);
  let next = 0;
  let done = 0;
  let successes = 0;
  let errors = 0;
  let firstError: unknown;

  const worker = async (): Promise<void> => {
    while (next < requests) {
      const index = next++;
      const startMs = performance.now();
      try {
        const status = await send();
        if (status >= 200 && status < 300) successes++;
      } catch (error) {
        errors++;
        firstError ??= error;
      }
      latenciesMs[index] = performance.now() - startMs;
      onProgress?.(++done);
    }
  };

  const startMs = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, worker));
  const totalMs = performance.now() - startMs;
  return { requests, successes, errors, latenciesMs: latenciesMs.sort(), totalMs, firstError };
}

/** Nearest-rank percentile of an ascending array (`p` in 0–100): a latency some request really had. */
export function percentile(sortedMs: Float64Array, p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedMs.length);
  return sortedMs[Math.min(sortedMs.length, Math.max(1, rank)) - 1] as number;
}

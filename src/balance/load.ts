/**
 * The load each endpoint carries, updated by the balance layer after every attempt and read by
 * pickers: in-flight count and the peak-EWMA latency estimate, plus the client-wide latency (the
 * median of recent successful attempts) that stands in for endpoints without history. A
 * classified failure is recorded as at least `failurePenalty ×` the client-wide latency, so a
 * replica that fails fast does not look like the fastest one (the classifier feeds the
 * balancer's load).
 *
 * An endpoint's latency is also at least the mean age of its attempts still in flight: a replica
 * that has stopped answering is seen as slow while its requests wait, not only once they end
 * (peak-EWMA alone learns of a stall only when the first stalled response finally arrives).
 */
import type { Endpoint } from "../core/endpoint.js";
import { LatencyWindow } from "../core/latency.js";
import { observePeakEwma, readPeakEwma } from "./peak-ewma.js";

export interface LoadOptions {
  /** Time constant of the EWMA, ms (Finagle and Linkerd: 10 s). */
  readonly decayMs: number;
  /** A failed attempt counts as at least this multiple of the client-wide latency. */
  readonly failurePenalty: number;
  /** Cost of an endpoint when nothing has been measured yet, ms. */
  readonly defaultRttMs: number;
}

export const DEFAULT_LOAD_OPTIONS: LoadOptions = Object.freeze({
  decayMs: 10_000,
  failurePenalty: 10,
  defaultRttMs: 1,
});

export class LoadTracker {
  readonly options: LoadOptions;
  /** Recent successful latencies; their median is the client-wide latency. */
  readonly #recent = new LatencyWindow(10_000);

  constructor(options: LoadOptions = DEFAULT_LOAD_OPTIONS) {
    this.options = options;
  }

  /** Records one answered attempt. */
  observe(endpoint: Endpoint, rttMs: number, failed: boolean, nowMs: number): void {
    const { decayMs } = this.options;
    const sample = failed ? Math.max(rttMs, this.options.failurePenalty * this.baselineMs(nowMs)) : rttMs;
    endpoint.ewmaMs = observePeakEwma(endpoint.ewmaMs, endpoint.ewmaStamp, sample, nowMs, decayMs);
    endpoint.ewmaStamp = nowMs;
    // A median, not a mean: one very slow replica must not make every other one look fast.
    if (!failed) this.#recent.record(rttMs, nowMs);
  }

  /** The latency to assume for an endpoint at `nowMs`. */
  latencyMs(endpoint: Endpoint, nowMs: number): number {
    const estimate = readPeakEwma(
      endpoint.ewmaMs,
      endpoint.ewmaStamp,
      nowMs,
      this.options.decayMs,
      this.baselineMs(nowMs),
    );
    const pendingAgeMs = endpoint.pendingAgeMs(nowMs);
    return pendingAgeMs > estimate ? pendingAgeMs : estimate;
  }

  /** The client-wide latency: median of recent successes, or `defaultRttMs` before any. */
  baselineMs(nowMs: number): number {
    const median = this.#recent.percentile(50, nowMs);
    return Number.isNaN(median) ? this.options.defaultRttMs : median;
  }
}

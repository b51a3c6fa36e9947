/**
 * The load each endpoint carries, updated by the balance layer after every attempt and read by
 * pickers: in-flight count and the peak-EWMA latency estimate, plus the client-wide estimate that
 * stands in for endpoints without history. A classified failure is recorded as at least
 * `failurePenalty ×` the client-wide estimate, so a replica that fails fast does not look like the
 * fastest one (the classifier feeds the balancer's load).
 */
import type { Endpoint } from "../core/endpoint.js";
import { observePeakEwma, readPeakEwma } from "./peak-ewma.js";

export interface LoadOptions {
  /** Time constant of the EWMA, ms (Finagle and Linkerd: 10 s). */
  readonly decayMs: number;
  /** A failed attempt counts as at least this multiple of the client-wide latency. */
  readonly failurePenalty: number;
  /** Cost of an endpoint when nothing has been measured yet, ms. */
  readonly defaultRttMs: number;
}

export const DEFAULT_LOAD_OPTIONS: LoadOptions = Object.freeze({ decayMs: 10_000, failurePenalty: 10, defaultRttMs: 1 });

export class LoadTracker {
  readonly options: LoadOptions;
  /** Client-wide latency estimate (ms): a running mean of the last ~256 successful latencies. */
  globalMs = Number.NaN;
  #samples = 0;

  constructor(options: LoadOptions = DEFAULT_LOAD_OPTIONS) {
    this.options = options;
  }

  /** Records one answered attempt. */
  observe(endpoint: Endpoint, rttMs: number, failed: boolean, nowMs: number): void {
    const { decayMs } = this.options;
    const sample = failed ? Math.max(rttMs, this.options.failurePenalty * this.baselineMs()) : rttMs;
    endpoint.ewmaMs = observePeakEwma(endpoint.ewmaMs, endpoint.ewmaStamp, sample, nowMs, decayMs);
    endpoint.ewmaStamp = nowMs;
    if (!failed) {
      // A mean over samples, not time: it must not be dominated by whichever answer came first.
      if (this.#samples < 256) this.#samples++;
      const g = this.globalMs;
      this.globalMs = Number.isNaN(g) ? rttMs : g + (rttMs - g) / this.#samples;
    }
  }

  /** The latency to assume for an endpoint at `nowMs`. */
  latencyMs(endpoint: Endpoint, nowMs: number): number {
    return readPeakEwma(endpoint.ewmaMs, endpoint.ewmaStamp, nowMs, this.options.decayMs, this.baselineMs());
  }

  baselineMs(): number {
    return Number.isNaN(this.globalMs) ? this.options.defaultRttMs : this.globalMs;
  }
}

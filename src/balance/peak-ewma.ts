/**
 * Peak-EWMA load estimation (Finagle's PeakEwma, Linkerd's and Tower's `load/peak_ewma`):
 * a latency estimate that jumps up at once on a slow response (the peak) and decays toward
 * recent samples with a time constant (`decayMs`, 10 s by default), so one slow answer is
 * believed immediately and forgiven gradually.
 *
 * Two departures from Finagle, both about endpoints nobody is sending to:
 * - an endpoint with no history is costed at the client-wide estimate (the mean of what every
 *   endpoint answered), so it is neither starved (an infinite cost) nor flooded (a zero cost);
 * - an idle endpoint's estimate decays toward the client-wide estimate rather than toward zero,
 *   so a once-slow endpoint is probed again after a while without being flooded at a cost of 0.
 *
 * Pure functions over numbers: no clock, no I/O.
 */

/** The weight kept by an old estimate after `elapsedMs`: e^(-elapsed/decay). */
export function decayWeight(elapsedMs: number, decayMs: number): number {
  return elapsedMs <= 0 ? 1 : Math.exp(-elapsedMs / decayMs);
}

/**
 * The new estimate after observing `rttMs`: the peak if it is higher, otherwise an exponentially
 * weighted average by the time since the previous sample.
 */
export function observePeakEwma(
  estimate: number,
  stampMs: number,
  rttMs: number,
  nowMs: number,
  decayMs: number,
): number {
  if (Number.isNaN(estimate) || rttMs > estimate) return rttMs;
  const w = decayWeight(nowMs - stampMs, decayMs);
  return estimate * w + rttMs * (1 - w);
}

/** The estimate as read at `nowMs`: decayed toward `baselineMs` since the last sample. */
export function readPeakEwma(
  estimate: number,
  stampMs: number,
  nowMs: number,
  decayMs: number,
  baselineMs: number,
): number {
  if (Number.isNaN(estimate)) return baselineMs;
  if (Number.isNaN(baselineMs)) return estimate;
  const w = decayWeight(nowMs - stampMs, decayMs);
  return baselineMs + (estimate - baselineMs) * w;
}

/**
 * The P2C cost of an endpoint: its latency estimate times the work queued on it, divided by its
 * weight. `inflight + 1` makes an idle fast endpoint cheaper than a busy one, and a busy one
 * cheaper as its queue drains.
 */
export function peakEwmaCost(rttMs: number, inflight: number, weight: number): number {
  return (rttMs * (inflight + 1)) / (weight > 0 ? weight : 1);
}

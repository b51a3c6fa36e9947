/**
 * Admission control: how many requests a server works on at once, and which ones it turns away
 * first when it is full. A request over the limit is shed at the door — 503, `Retry-After`,
 * `x-weft-shed` — before any handler runs, so it costs the server a few microseconds instead of a
 * slot, and a weft caller resends it elsewhere at once without blaming this endpoint (the
 * classifier's `overloaded`).
 *
 * Priorities (the SRE book's criticality, Envoy's overload manager): each class may fill the
 * server up to its own share of the limit, so as load rises the lowest class is shed first and
 * the highest last:
 *
 *     low 80 %   normal 100 %   high 125 %   critical: never shed
 *
 * `critical` is for what must get through a storm — health checks are answered before admission
 * and are never counted — and `high` may run a quarter over the limit, so a burst of normal
 * traffic cannot starve it. Every admitted request counts toward `inflight`, whatever its class.
 */
import { AdaptiveLimit, type AdaptiveLimitConfig } from "./adaptive-limit.js";

export type Priority = "critical" | "high" | "normal" | "low";

export const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];

/** Share of the limit each class may fill. */
const SHARE: Readonly<Record<Priority, number>> = { critical: Infinity, high: 1.25, normal: 1, low: 0.8 };

export type AdmissionConfig =
  { readonly adaptive: false; readonly limit: number } | ({ readonly adaptive: true } & AdaptiveLimitConfig);

export interface AdmissionSnapshot {
  readonly adaptive: boolean;
  /** The limit now (fixed, or the adaptive controller's). */
  readonly limit: number;
  readonly inflight: number;
  /** Requests shed so far, by the class they had. */
  readonly shed: Readonly<Record<Priority, number>>;
  /** Adaptive only: the no-load latency and the last window's p50, ms (null before the first window). */
  readonly minRttMs: number | null;
  readonly sampleRttMs: number | null;
}

export class Admission {
  inflight = 0;
  readonly #fixed: number;
  readonly #adaptive: AdaptiveLimit | null;
  readonly #shed: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 };

  constructor(config: AdmissionConfig) {
    this.#adaptive = config.adaptive ? new AdaptiveLimit(config) : null;
    this.#fixed = config.adaptive ? 0 : config.limit;
  }

  get limit(): number {
    return this.#adaptive === null ? this.#fixed : this.#adaptive.limit;
  }

  /** Admits a request of class `priority` (counting it in flight), or counts it shed and returns false. */
  tryAcquire(priority: Priority): boolean {
    const inflight = this.inflight;
    if (priority !== "normal" || inflight >= this.limit) {
      if (!(inflight < Math.max(1, Math.floor(this.limit * SHARE[priority])))) {
        this.#shed[priority]++;
        return false;
      }
    }
    this.inflight = inflight + 1;
    this.#adaptive?.observeInflight(inflight + 1);
    return true;
  }

  /**
   * Frees an admitted request's slot. `rttMs` is how long it held it; pass NaN for a request that
   * says nothing about the server's speed (its caller went away, or it failed), so it does not
   * move the adaptive limit.
   */
  release(rttMs: number, nowMs: number): void {
    this.inflight--;
    const adaptive = this.#adaptive;
    if (adaptive === null) return;
    if (Number.isNaN(rttMs)) adaptive.tick(nowMs);
    else adaptive.record(rttMs, nowMs);
  }

  snapshot(): AdmissionSnapshot {
    const adaptive = this.#adaptive;
    return {
      adaptive: adaptive !== null,
      limit: this.limit,
      inflight: this.inflight,
      shed: { ...this.#shed },
      minRttMs: adaptive === null || Number.isNaN(adaptive.minRttMs) ? null : round(adaptive.minRttMs),
      sampleRttMs: adaptive === null || Number.isNaN(adaptive.sampleRttMs) ? null : round(adaptive.sampleRttMs),
    };
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

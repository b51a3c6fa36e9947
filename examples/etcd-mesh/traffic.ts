/**
 * Steady traffic for the example: a paced open loop (a fixed rate, not "as fast as answers
 * come back"), so a slow or dead instance cannot quietly lower the load it is judged under, with
 * a bound on calls in flight so a stall cannot pile up thousands of them either. A call counts as
 * ok when the client returns a 200 and its body (the instance's name) was read; anything else —
 * a throw after weft's retries, or another status — counts as failed, with its reason kept.
 *
 * Counts go into one bucket per second, which the caller takes and prints; `retries` comes from
 * `client.events.onRetry`, so the line shows the retries that kept a call from failing.
 */
import { errorCode, type Client } from "weft";

export interface Bucket {
  ok: number;
  failed: number;
  retries: number;
  /** Answers per instance name. */
  readonly answeredBy: Map<string, number>;
}

export interface TrafficOptions {
  readonly ratePerSecond: number;
  readonly maxInFlight: number;
}

const TICK_MS = 5;

const emptyBucket = (): Bucket => ({ ok: 0, failed: 0, retries: 0, answeredBy: new Map() });

export class Traffic {
  readonly #client: Client;
  readonly #options: TrafficOptions;
  readonly #inflight = new Set<Promise<void>>();
  readonly #stopRetries: () => void;
  readonly total = { sent: 0, ok: 0, failed: 0, retries: 0, skipped: 0 };
  /** Why calls failed: error code or status → count. */
  readonly failures = new Map<string, number>();
  #bucket = emptyBucket();
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;

  constructor(client: Client, options: TrafficOptions) {
    this.#client = client;
    this.#options = options;
    this.#stopRetries = client.events.onRetry(() => {
      this.#bucket.retries++;
      this.total.retries++;
    });
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** The counts since the last call, and a fresh bucket. */
  take(): Bucket {
    const bucket = this.#bucket;
    this.#bucket = emptyBucket();
    return bucket;
  }

  /** Stops sending; resolves when the calls in flight have ended. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#inflight);
    this.#stopRetries();
  }

  /** Sends what the rate asks for by now; over the in-flight bound, the call is skipped (counted). */
  #tick(): void {
    const due = Math.floor(((performance.now() - this.#startedAt) / 1000) * this.#options.ratePerSecond);
    while (this.total.sent + this.total.skipped < due) {
      if (this.#inflight.size >= this.#options.maxInFlight) {
        this.total.skipped++;
        continue;
      }
      this.total.sent++;
      const call = this.#call().finally(() => this.#inflight.delete(call));
      this.#inflight.add(call);
    }
  }

  async #call(): Promise<void> {
    try {
      const res = await this.#client.request({ path: "/" });
      const body = await res.text();
      if (res.status !== 200) return this.#fail(`HTTP ${res.status}`);
      // Counted in the second the call ends in.
      const bucket = this.#bucket;
      bucket.ok++;
      this.total.ok++;
      bucket.answeredBy.set(body, (bucket.answeredBy.get(body) ?? 0) + 1);
    } catch (error) {
      this.#fail(errorCode(error));
    }
  }

  #fail(reason: string): void {
    this.#bucket.failed++;
    this.total.failed++;
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }
}

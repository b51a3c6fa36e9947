/**
 * Steady traffic for the canary example: a paced open loop (a fixed rate, whatever the answers
 * do) with a bound on calls in flight, every fifth call a POST with a small JSON body, the rest
 * GETs. Each instance answers with its version, so a call's answer says which side of the split
 * it went to.
 *
 * A call counts under the label in force when it was SENT (`label`, which main.ts sets to the
 * config version the caller has just applied): the route decision is made as the call enters the
 * client, so a call sent after a version applied was routed by it — calls in flight at the switch
 * count where they were routed, not where they happen to end.
 */
import { errorCode, type Client } from "weft";

export interface Count {
  calls: number;
  failed: number;
  posts: number;
  /** Answers per version ("v1", "v2"). */
  readonly answeredBy: Map<string, number>;
}

export interface LoadOptions {
  readonly ratePerSecond: number;
  readonly maxInFlight: number;
}

const TICK_MS = 5;
const POST_EVERY = 5;

export class Load {
  /** Calls sent from now on count under this label. */
  label = "before";
  /** Per label, in the order the labels were first used. */
  readonly counts = new Map<string, Count>();
  /** Why calls failed: error code or status → count. */
  readonly failures = new Map<string, number>();
  readonly total = { sent: 0, skipped: 0 };
  readonly #client: Client;
  readonly #options: LoadOptions;
  readonly #inflight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;

  constructor(client: Client, options: LoadOptions) {
    this.#client = client;
    this.#options = options;
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops sending; resolves when the calls in flight have ended. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#inflight);
  }

  #tick(): void {
    const due = Math.floor(((performance.now() - this.#startedAt) / 1000) * this.#options.ratePerSecond);
    while (this.total.sent + this.total.skipped < due) {
      if (this.#inflight.size >= this.#options.maxInFlight) {
        this.total.skipped++;
        continue;
      }
      const post = this.total.sent++ % POST_EVERY === POST_EVERY - 1;
      const count = this.#count(this.label);
      const call = this.#call(count, post).finally(() => this.#inflight.delete(call));
      this.#inflight.add(call);
    }
  }

  #count(label: string): Count {
    let count = this.counts.get(label);
    if (count === undefined) {
      count = { calls: 0, failed: 0, posts: 0, answeredBy: new Map() };
      this.counts.set(label, count);
    }
    return count;
  }

  async #call(count: Count, post: boolean): Promise<void> {
    count.calls++;
    if (post) count.posts++;
    try {
      const res = await this.#client.request(
        post
          ? {
              method: "POST",
              path: "/v1/orders",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ item: 42, quantity: 1 }),
            }
          : { path: "/v1/items/42" },
      );
      const version = await res.text();
      if (res.status !== 200) return this.#fail(count, `HTTP ${res.status}`);
      count.answeredBy.set(version, (count.answeredBy.get(version) ?? 0) + 1);
    } catch (error) {
      this.#fail(count, errorCode(error));
    }
  }

  #fail(count: Count, reason: string): void {
    count.failed++;
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }
}

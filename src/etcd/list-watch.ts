/**
 * List, then watch: the loop that keeps a view of an etcd range — a prefix (discovery) or one
 * exact key (a service's config document) — current, written once for every caller.
 *
 * `start()` lists the range and hands the listing over, then watches from the listing's revision
 * + 1, so no change between the two is lost. When etcd compacted that revision the watch is
 * cancelled: list again at once (the events in between are gone; a compaction is routine, not a
 * failure). When the stream breaks (etcd killed: the kernel resets the connection and undici
 * reports it), etcd cancels the watch for another reason, or a liveness probe fails (etcd frozen
 * or unreachable — the gateway's watch stream is one-way, so a silent stream cannot be told from a
 * quiet range without asking), the caller hears `onFailure` and decides when to `start()` again
 * (its backoff). Each `start()` begins a new round; callbacks of an older round are ignored, so a
 * late answer from a superseded list or watch never overwrites a newer one.
 */
import type { Clock, TimerHandle } from "../core/clock.js";
import type { EtcdClient, EtcdEvent, EtcdKeyValue, EtcdWatch } from "./client.js";

/** What to keep current: every key under `prefix`, or the one key `key`. */
export type EtcdRange = { readonly prefix: string } | { readonly key: string };

export interface ListWatchHandlers {
  /**
   * A complete listing of the range (for a key: zero or one kv), replacing whatever the caller
   * held. The watch is not established yet: the source is not known to work until `onSettled`.
   */
  onList(kvs: readonly EtcdKeyValue[], revision: number): void;
  /** A batch of changes from the watch, in order. */
  onEvents(events: readonly EtcdEvent[]): void;
  /** The watch is established (or etcd sent a progress notification): the source works. */
  onSettled(): void;
  /** The list, the watch or the probe failed; the loop has stopped until `start()` is called again. */
  onFailure(error: Error): void;
}

export interface ListWatchOptions {
  readonly client: EtcdClient;
  readonly range: EtcdRange;
  /** How often a cheap call checks that etcd still answers while the watch is quiet, ms. */
  readonly probeIntervalMs: number;
  /** The probe's timer runs on it. */
  readonly clock: Clock;
  readonly handlers: ListWatchHandlers;
}

/**
 * @example
 * const loop = new EtcdListWatch({ client, range: { key: "/weft/config/catalog" }, probeIntervalMs: 10_000, clock, handlers });
 * loop.start(); // and again after each onFailure, after a backoff
 * loop.stop();
 */
export class EtcdListWatch {
  readonly #client: EtcdClient;
  readonly #range: EtcdRange;
  readonly #probeIntervalMs: number;
  readonly #clock: Clock;
  readonly #handlers: ListWatchHandlers;
  #watch: EtcdWatch | undefined;
  #probe: TimerHandle | undefined;
  /** Bumped by every list, a failed probe and stop(): callbacks of an older round are ignored. */
  #round = 0;

  constructor(options: ListWatchOptions) {
    this.#client = options.client;
    this.#range = options.range;
    this.#probeIntervalMs = options.probeIntervalMs;
    this.#clock = options.clock;
    this.#handlers = options.handlers;
  }

  /** Lists and watches (again), dropping any watch of an earlier round. */
  start(): void {
    void this.#list();
  }

  /** Ends the watch and the probe; nothing is reported afterwards. Does not close the client. */
  stop(): void {
    this.#round++;
    this.#unwatch();
  }

  async #list(): Promise<void> {
    const round = ++this.#round;
    this.#unwatch();
    let listing: { revision: number; kvs: readonly EtcdKeyValue[] };
    try {
      listing = await this.#read();
    } catch (error) {
      if (round === this.#round) this.#handlers.onFailure(asError(error));
      return;
    }
    if (round !== this.#round) return;
    this.#handlers.onList(listing.kvs, listing.revision);
    // The listing's handler may have stopped the loop (a listener closing its source).
    if (round !== this.#round) return;
    const handlers = {
      onProgress: (): void => {
        if (round === this.#round) this.#handlers.onSettled();
      },
      onEvents: (events: readonly EtcdEvent[]): void => {
        if (round === this.#round) this.#handlers.onEvents(events);
      },
      onCanceled: (compactRevision: number | undefined, reason: string): void => {
        if (round !== this.#round) return;
        // Compacted between our list and our watch: the events in between are gone, so list
        // again at once. Any other cancellation (e.g. permission denied) is a failure: backoff.
        if (compactRevision !== undefined) return void this.#list();
        this.#unwatch();
        this.#handlers.onFailure(new Error(`etcd cancelled the watch (${reason})`));
      },
      onClose: (error: Error): void => {
        if (round !== this.#round) return;
        this.#unwatch();
        this.#handlers.onFailure(error);
      },
    };
    const from = listing.revision + 1;
    this.#watch =
      "prefix" in this.#range
        ? this.#client.watch(this.#range.prefix, from, handlers)
        : this.#client.watchKey(this.#range.key, from, handlers);
    this.#scheduleProbe(round);
  }

  async #read(): Promise<{ revision: number; kvs: readonly EtcdKeyValue[] }> {
    if ("prefix" in this.#range) return this.#client.rangePrefix(this.#range.prefix);
    const { revision, kv } = await this.#client.range(this.#range.key);
    return { revision, kvs: kv === undefined ? [] : [kv] };
  }

  /** A cheap call beside the watch: a frozen or unreachable etcd fails it where the stream stays silent. */
  #scheduleProbe(round: number): void {
    this.#probe = this.#clock.setTimer(() => {
      this.#probe = undefined;
      // Only the answer matters, not the count: count_only sends no values, and for one key the
      // count of keys starting with it is as cheap.
      const probed = "prefix" in this.#range ? this.#range.prefix : this.#range.key;
      this.#client.count(probed).then(
        () => {
          if (round === this.#round) this.#scheduleProbe(round);
        },
        (error: unknown) => {
          if (round !== this.#round) return;
          this.#round++;
          this.#unwatch();
          this.#handlers.onFailure(new Error(`etcd liveness probe failed: ${asError(error).message}`));
        },
      );
    }, this.#probeIntervalMs);
  }

  #unwatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
    this.#probe?.cancel();
    this.#probe = undefined;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

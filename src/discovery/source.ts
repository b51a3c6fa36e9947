/**
 * What every live discovery source shares: the last good set, staleness, warnings and the retry
 * timer. A source (DNS, a file, etcd) only reads its backend and calls `publish` with a valid
 * answer or `failure` with what went wrong; this class guarantees the rules of the resolver model:
 *
 * - a failure never empties a working set: the last good endpoints keep serving, the resolver is
 *   marked stale, and the source is retried with backoff (full jitter);
 * - only a successful, valid, non-empty answer replaces the set (an empty answer while a set
 *   serves is reported as a failure — a deleted record or a wiped prefix is far more often an
 *   accident than a fleet scaled to zero, and the outlier detector and breakers handle dead
 *   endpoints anyway);
 * - an unchanged answer publishes nothing, so balancers keep their state;
 * - the source starts on the first subscriber (lazily), and stops on `close()`.
 */
import type { Resolver, ResolverContext, ResolverSnapshot } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import type { TimerHandle } from "../core/clock.js";
import type { Disposer } from "../core/types.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";

/** Backoff for retrying a failing source: uniform in [0, min(maxMs, baseMs × 2^(n-1))]. */
export interface SourceBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

const DEFAULT_SOURCE_BACKOFF: SourceBackoff = Object.freeze({ baseMs: 200, maxMs: 10_000 });

export function checkSourceBackoff(option: string, value: unknown): SourceBackoff {
  if (value === undefined) return DEFAULT_SOURCE_BACKOFF;
  if (!isPlainObject(value)) fail(option, value, "{ baseMs?, maxMs? }");
  checkKeys(value, ["baseMs", "maxMs"], option);
  const baseMs =
    (checkMs(`${option}.baseMs`, value.baseMs, false) as number | undefined) ?? DEFAULT_SOURCE_BACKOFF.baseMs;
  const maxMs =
    (checkMs(`${option}.maxMs`, value.maxMs, false) as number | undefined) ??
    Math.max(baseMs, DEFAULT_SOURCE_BACKOFF.maxMs);
  if (maxMs < baseMs) fail(`${option}.maxMs`, maxMs, `a number ≥ ${option}.baseMs (${baseMs})`);
  return Object.freeze({ baseMs, maxMs });
}

export abstract class SourceResolver implements Resolver {
  protected readonly context: ResolverContext;
  /** Names the source in warnings and in the snapshot, e.g. `dns:SRV _http._tcp.catalog.test`. */
  readonly source: string;
  readonly #backoff: SourceBackoff;
  #endpoints: readonly EndpointInfo[] | undefined;
  #updatedAt: number | undefined;
  #stale = false;
  #lastError: string | undefined;
  #failures = 0;
  #listeners: ((endpoints: readonly EndpointInfo[]) => void)[] = [];
  #stateListeners: ((snapshot: ResolverSnapshot) => void)[] = [];
  #started = false;
  #closed = false;
  #timer: TimerHandle | undefined;

  constructor(source: string, context: ResolverContext, backoff: SourceBackoff = DEFAULT_SOURCE_BACKOFF) {
    this.source = source;
    this.context = context;
    this.#backoff = backoff;
  }

  /** Reads the backend for the first time (and sets up watches or refresh). Called once. */
  protected abstract start(): void;
  /** Releases every timer, socket and watch. */
  protected abstract stop(): Promise<void>;

  get closed(): boolean {
    return this.#closed;
  }

  subscribe(listener: (endpoints: readonly EndpointInfo[]) => void): Disposer {
    this.#listeners = [...this.#listeners, listener];
    if (this.#endpoints !== undefined) listener(this.#endpoints);
    if (!this.#started && !this.#closed) {
      this.#started = true;
      this.start();
    }
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  onState(listener: (snapshot: ResolverSnapshot) => void): Disposer {
    this.#stateListeners = [...this.#stateListeners, listener];
    return () => {
      this.#stateListeners = this.#stateListeners.filter((l) => l !== listener);
    };
  }

  snapshot(): ResolverSnapshot {
    return {
      source: this.source,
      endpoints: this.#endpoints ?? [],
      updatedAt: this.#updatedAt,
      stale: this.#stale,
      lastError: this.#lastError,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#listeners = [];
    this.#stateListeners = [];
    if (this.#started) await this.stop();
  }

  /**
   * A valid answer from the backend. Replaces the set when it differs; an empty answer while a
   * set serves is a failure (see the file comment). Returns whether the answer was accepted.
   * `settled: false` (a list whose watch is not established yet) keeps the backoff where it is,
   * so a source that lists fine but cannot watch is not retried in a tight loop.
   */
  protected publish(endpoints: readonly EndpointInfo[], settled = true): boolean {
    if (this.#closed) return false;
    if (endpoints.length === 0 && this.#endpoints !== undefined && this.#endpoints.length > 0) {
      this.failure("the answer has no endpoints", false);
      return false;
    }
    const wasStale = this.#stale || this.#lastError !== undefined;
    if (settled) this.#failures = 0;
    this.#stale = false;
    this.#lastError = undefined;
    this.#updatedAt = this.context.clock.now();
    const changed = this.#endpoints === undefined || !sameSet(this.#endpoints, endpoints);
    if (changed) {
      this.#endpoints = Object.freeze([...endpoints]);
      for (const listener of this.#listeners) listener(this.#endpoints);
    }
    if (wasStale || changed) this.#emitState();
    return true;
  }

  /**
   * The backend failed or answered something unusable. Keeps the last good set, marks the
   * resolver stale and warns once per distinct error. With `retry` (the default) the subclass's
   * `retry()` runs after a backoff; a watch-based source that reconnects by itself passes false.
   */
  protected failure(error: unknown, retry = true): void {
    if (this.#closed) return;
    const message = error instanceof Error ? error.message : String(error);
    const repeated = this.#lastError === message;
    this.#lastError = message;
    this.#stale = true;
    this.#failures++;
    if (!repeated) {
      const kept =
        this.#endpoints === undefined
          ? "no endpoints yet"
          : `keeping the last good set of ${this.#endpoints.length} endpoint(s)`;
      this.context.warn(`weft discovery ${this.source}: ${message}; ${kept}`);
    }
    this.#emitState();
    if (retry) this.scheduleRetry();
  }

  /**
   * The source works again (for a watch: the stream is established): the next failure starts
   * its backoff from the beginning. `publish` does this unless told the answer is not settled yet.
   */
  protected settled(): void {
    this.#failures = 0;
  }

  /** Warns about one rejected input (a malformed record or value) without touching the set. */
  protected reject(what: string, value: unknown, why: string): void {
    if (this.#closed) return;
    this.context.warn(`weft discovery ${this.source}: rejected ${what} ${preview(value)}: ${why}`);
  }

  /** Runs `retry()` after the backoff for the current run of failures. */
  protected scheduleRetry(): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    const ceiling = Math.min(
      this.#backoff.maxMs,
      this.#backoff.baseMs * 2 ** Math.min(30, Math.max(0, this.#failures - 1)),
    );
    // Full jitter, but never a busy loop.
    const wait = Math.max(this.#backoff.baseMs / 4, this.context.random() * ceiling);
    this.#timer = this.context.clock.setTimer(() => {
      this.#timer = undefined;
      if (!this.#closed) this.retry();
    }, wait);
  }

  /** Runs `fn` after `ms` (a refresh); replaces any pending retry or refresh. */
  protected scheduleRefresh(ms: number, fn: () => void): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    this.#timer = this.context.clock.setTimer(() => {
      this.#timer = undefined;
      if (!this.#closed) fn();
    }, ms);
  }

  /** Reads the backend again after a failure. Default: `start()`'s read, via `refresh()`. */
  protected retry(): void {
    this.refresh();
  }

  /** One read of the backend; sources that poll implement it. */
  protected refresh(): void {}

  #emitState(): void {
    if (this.#stateListeners.length === 0) return;
    const snapshot = this.snapshot();
    for (const listener of this.#stateListeners) listener(snapshot);
  }
}

/** Same endpoints with the same weight, zone and metadata, in any order. */
export function sameSet(a: readonly EndpointInfo[], b: readonly EndpointInfo[]): boolean {
  if (a.length !== b.length) return false;
  const key = (e: EndpointInfo): string =>
    `${e.url}\u0000${e.weight ?? 1}\u0000${e.zone ?? ""}\u0000${JSON.stringify(e.metadata ?? {})}`;
  const left = new Set(a.map(key));
  return b.every((e) => left.has(key(e)));
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

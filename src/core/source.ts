/**
 * What every live source shares — discovery's endpoint sets, dynamic config's documents: the last
 * good value, staleness, warnings and the retry timer. A source (DNS, a file, etcd) only reads its
 * backend and calls `publish` with a valid value or `failure` with what went wrong; this class
 * guarantees the rules:
 *
 * - a failure never replaces a working value: the last good one keeps serving, the source is
 *   marked stale, one warning is given per distinct error, and the backend is retried with
 *   backoff (full jitter, so a fleet that lost its backend together does not return together);
 * - only a successful, valid answer replaces the value, and an unchanged one (`same`) publishes
 *   nothing, so subscribers keep their state;
 * - the source starts on the first subscriber (lazily), and stops on `close()`: no timer left.
 *
 * A subclass says what its values are: when two are the same (`same`), how the value kept through
 * a failure is described in the warning (`kept`), and what its snapshot looks like (`snapshot`).
 */
import type { TimerHandle, Clock, Random } from "./clock.js";
import type { Disposer } from "./types.js";
import { checkKeys, checkMs, fail, isPlainObject } from "./validate.js";

/** Backoff for retrying a failing source: uniform in [0, min(maxMs, baseMs × 2^(n-1))]. */
export interface SourceBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

const DEFAULT_SOURCE_BACKOFF: SourceBackoff = Object.freeze({ baseMs: 200, maxMs: 10_000 });

/**
 * Checks a source's `backoff` option; absent → `{ baseMs: 200, maxMs: 10_000 }`, and `maxMs`
 * defaults to the larger of `baseMs` and 10 000.
 * @example checkSourceBackoff("etcdConfig.backoff", { baseMs: 100 }) // { baseMs: 100, maxMs: 10_000 }
 */
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

/** What a source is given (discovery's `ResolverContext`, config's `ConfigWatchContext` have this shape). */
export interface SourceContext {
  readonly clock: Clock;
  /** Jitter for retry backoff. */
  readonly random: Random;
  /** Reports a failing backend or a rejected input; the last good value keeps serving. */
  readonly warn: (message: string) => void;
}

/** The state every source reports, whatever its value. */
export interface SourceState<T> {
  readonly source: string;
  readonly value: T | undefined;
  /** Clock time of the last successful read (undefined before the first). */
  readonly updatedAt: number | undefined;
  readonly stale: boolean;
  readonly lastError: string | undefined;
}

export interface WatchedSourceOptions {
  /** Names the source in warnings and snapshots, e.g. `dns:SRV _http._tcp.catalog.test`. */
  readonly source: string;
  /** Starts every warning, before the source: `weft discovery`, `weft config`. */
  readonly label: string;
  readonly context: SourceContext;
  readonly backoff?: SourceBackoff;
}

/**
 * The base of a live source. Subclasses read their backend in `start()` (and `refresh()` or
 * `retry()`), report with `publish` / `healthy` / `failure` / `reject` / `notice`, and release
 * everything in `stop()`.
 * @typeParam T the value published; S the snapshot `onState` listeners receive.
 * @example
 * class Polled extends WatchedSource<string, SourceState<string>> {
 *   protected start() { this.refresh(); }
 *   protected async stop() {}
 *   protected override refresh() { read().then((text) => this.publish(text), (e) => this.failure(e)); }
 *   protected same(a: string, b: string) { return a === b; }
 *   protected kept(text: string | undefined) { return text === undefined ? "nothing yet" : "keeping the last text"; }
 *   snapshot() { return this.state(); }
 * }
 */
export abstract class WatchedSource<T, S> {
  protected readonly context: SourceContext;
  /** Names the source in warnings and in the snapshot. */
  readonly source: string;
  readonly #label: string;
  readonly #backoff: SourceBackoff;
  #value: T | undefined;
  #updatedAt: number | undefined;
  #stale = false;
  #lastError: string | undefined;
  #failures = 0;
  #listeners: ((value: T) => void)[] = [];
  #stateListeners: ((snapshot: S) => void)[] = [];
  #started = false;
  #closed = false;
  #timer: TimerHandle | undefined;

  constructor(options: WatchedSourceOptions) {
    this.source = options.source;
    this.#label = options.label;
    this.context = options.context;
    this.#backoff = options.backoff ?? DEFAULT_SOURCE_BACKOFF;
  }

  /** Reads the backend for the first time (and sets up watches or refresh). Called once. */
  protected abstract start(): void;
  /** Releases every timer, socket and watch. */
  protected abstract stop(): Promise<void>;
  /** Whether `next` says nothing new over `current` (then it is not published). */
  protected abstract same(current: T, next: T): boolean;
  /** The value kept through a failure, for the warning: "keeping the last good set of 3 endpoint(s)". */
  protected abstract kept(value: T | undefined): string;
  abstract snapshot(): S;

  get closed(): boolean {
    return this.#closed;
  }

  /** The last good value (undefined before the first). */
  protected get value(): T | undefined {
    return this.#value;
  }

  /** The fields every snapshot has; a subclass's `snapshot()` shapes them. */
  protected state(): SourceState<T> {
    return {
      source: this.source,
      value: this.#value,
      updatedAt: this.#updatedAt,
      stale: this.#stale,
      lastError: this.#lastError,
    };
  }

  subscribe(listener: (value: T) => void): Disposer {
    this.#listeners = [...this.#listeners, listener];
    if (this.#value !== undefined) listener(this.#value);
    if (!this.#started && !this.#closed) {
      this.#started = true;
      this.start();
    }
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  onState(listener: (snapshot: S) => void): Disposer {
    this.#stateListeners = [...this.#stateListeners, listener];
    return () => {
      this.#stateListeners = this.#stateListeners.filter((l) => l !== listener);
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
   * A valid answer from the backend: clears staleness, and replaces the value when it differs.
   * Returns whether the answer was accepted. `settled: false` (a list whose watch is not
   * established yet) keeps the backoff where it is, so a source that lists fine but cannot watch
   * is not retried in a tight loop.
   */
  protected publish(value: T, settled = true): boolean {
    if (this.#closed) return false;
    const wasStale = this.#stale || this.#lastError !== undefined;
    this.#fresh(settled);
    const changed = this.#value === undefined || !this.same(this.#value, value);
    if (changed) {
      this.#value = value;
      for (const listener of this.#listeners) listener(value);
    }
    if (wasStale || changed) this.#emitState();
    return true;
  }

  /**
   * A successful read that has nothing to publish (no config document yet): clears staleness
   * without touching the value.
   */
  protected healthy(settled = true): void {
    if (this.#closed) return;
    const wasStale = this.#stale || this.#lastError !== undefined;
    this.#fresh(settled);
    if (wasStale) this.#emitState();
  }

  /**
   * The backend failed or answered something unusable. Keeps the last good value, marks the
   * source stale and warns once per distinct error. With `retry` (the default) the subclass's
   * `retry()` runs after a backoff; a watch-based source that reconnects by itself passes false.
   */
  protected failure(error: unknown, retry = true): void {
    if (this.#closed) return;
    const message = error instanceof Error ? error.message : String(error);
    const repeated = this.#lastError === message;
    this.#lastError = message;
    this.#stale = true;
    this.#failures++;
    if (!repeated) this.context.warn(`${this.#label} ${this.source}: ${message}; ${this.kept(this.#value)}`);
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

  /** Warns about one rejected input (a malformed record or value) without touching the value. */
  protected reject(what: string, value: unknown, why: string): void {
    if (this.#closed) return;
    this.context.warn(`${this.#label} ${this.source}: rejected ${what} ${preview(value)}: ${why}`);
  }

  /** Warns about something that is not a failure (a config file that does not exist yet). */
  protected notice(message: string): void {
    if (this.#closed) return;
    this.context.warn(`${this.#label} ${this.source}: ${message}`);
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

  #fresh(settled: boolean): void {
    if (settled) this.#failures = 0;
    this.#stale = false;
    this.#lastError = undefined;
    this.#updatedAt = this.context.clock.now();
  }

  #emitState(): void {
    if (this.#stateListeners.length === 0) return;
    const snapshot = this.snapshot();
    for (const listener of this.#stateListeners) listener(snapshot);
  }
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

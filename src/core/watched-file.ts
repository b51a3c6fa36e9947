/**
 * One file that something else rewrites (an operator, config management, a deploy tool), read
 * again whenever it changes: what `fileDiscovery` and `fileConfig` share.
 *
 * The file's directory is watched, not the file: editors and deploy tools replace a file by
 * renaming over it, which ends a watch on the file itself. A watch event is read after a short
 * debounce, so a burst of writes is read once. The file is also read every `pollMs`, because watch
 * events are lost on some filesystems (network mounts, some container overlays) and a directory
 * that does not exist yet cannot be watched. Reads run one at a time (`SerialTask`): a change
 * seen during a read is read right after it, never lost. Text identical to the last read is not
 * handed on, so an unchanged file is not parsed (or warned about) again on every poll.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Clock, TimerHandle } from "./clock.js";
import { SerialTask } from "./serial.js";

export interface WatchedFileOptions {
  /** An absolute path. */
  readonly file: string;
  /** How often the file is read even without a watch event, ms. */
  readonly pollMs: number;
  /** Wait after a watch event before reading, ms. */
  readonly debounceMs: number;
  readonly clock: Clock;
  /** The file's text, when it differs from the last text read. */
  readonly onText: (text: string) => void;
  /**
   * The file could not be read (`error.code`: ENOENT, EACCES, EISDIR…). The next successful read
   * is handed on even when its text is the one read before the error.
   */
  readonly onError: (error: NodeJS.ErrnoException) => void;
}

/**
 * @example
 * const file = new WatchedFile({ file: "/etc/weft/catalog.yaml", pollMs: 2000, debounceMs: 25, clock, onText, onError });
 * file.start();
 * file.close();
 */
export class WatchedFile {
  readonly #options: WatchedFileOptions;
  #watcher: FSWatcher | undefined;
  #debounce: TimerHandle | undefined;
  #poll: TimerHandle | undefined;
  #closed = false;
  readonly #reader = new SerialTask(
    () => this.#read(),
    () => this.#closed,
  );
  /** The text last handed on; undefined after a failed read. */
  #lastText: string | undefined;

  constructor(options: WatchedFileOptions) {
    this.#options = options;
  }

  /** Starts watching and reads the file for the first time. */
  start(): void {
    const { file } = this.#options;
    try {
      this.#watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(file)) this.#onChange();
      });
      this.#watcher.on("error", () => {
        // The directory went away or the watch broke: polling carries on alone.
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      // No directory yet, or watching unsupported here: polling alone.
    }
    this.refresh();
  }

  /** Reads the file now (or right after the read in progress), then polls again after `pollMs`. */
  refresh(): void {
    void this.#refresh();
  }

  /** Stops watching and polling; no handler is called afterwards. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#debounce?.cancel();
    this.#debounce = undefined;
    this.#poll?.cancel();
    this.#poll = undefined;
  }

  #onChange(): void {
    if (this.#closed) return;
    this.#debounce?.cancel();
    this.#debounce = this.#options.clock.setTimer(() => {
      this.#debounce = undefined;
      this.refresh();
    }, this.#options.debounceMs);
  }

  async #refresh(): Promise<void> {
    // A refresh asked for while one runs is folded into it; only the one that ran reschedules.
    if (!(await this.#reader.run()) || this.#closed) return;
    this.#poll?.cancel();
    this.#poll = this.#options.clock.setTimer(() => {
      this.#poll = undefined;
      this.refresh();
    }, this.#options.pollMs);
  }

  async #read(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#options.file, "utf8");
    } catch (error) {
      this.#lastText = undefined;
      if (!this.#closed) this.#options.onError(error as NodeJS.ErrnoException);
      return;
    }
    if (this.#closed || text === this.#lastText) return;
    this.#lastText = text;
    this.#options.onText(text);
  }
}

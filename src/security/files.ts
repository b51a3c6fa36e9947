/**
 * `tlsFiles({ cert, key, ca })` — TLS material from files that something else rotates: the SPIFFE
 * Workload API's file form (spiffe-helper writing `svid.pem`, `svid_key.pem`, `bundle.pem`),
 * cert-manager's mounted secret (`tls.crt`, `tls.key`, `ca.crt`, swapped through a `..data`
 * symlink), or a script.
 *
 * The files are read at construction (invalid material throws there: a service must not start
 * without its identity), then watched (`fs.watch` on each file's directory, which sees a rename
 * or a symlink swap as well as an in-place write) and polled, because watch events can be lost.
 * A change is read after a short debounce, all files together, and applied only when the whole
 * set checks out (material.ts): a half-written file, a key that is not the certificate's (one file
 * written before the other) or an expired certificate is refused with a warning naming the file
 * and the reason, and the last good material keeps serving; the next change is read afresh.
 *
 * Expiry: a warning once per certificate when less than `warnBeforeMs` of it remains (default:
 * a third of its lifetime, at most 24 h — an SVID of 1 h warns at 20 min), and again when it
 * lapses. The snapshot carries `expiresInMs` for dashboards and alerts.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { systemClock, type Clock, type TimerHandle } from "../core/clock.js";
import { SerialTask } from "../core/serial.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { checkMaterial, materialSnapshot, type TlsMaterial, type TlsSnapshot, type TlsSource } from "./material.js";

export interface TlsFilesOptions {
  /** The certificate chain file (PEM, leaf first). */
  readonly cert?: string;
  /** The private key file (PEM). Required with `cert`. */
  readonly key?: string;
  /** The trust bundle file (PEM). */
  readonly ca?: string;
  /** How often the files are read even without a watch event, ms. Default 1 000. */
  readonly pollMs?: number;
  /** Wait after a watch event before reading, so the writes of one rotation are read once, ms. Default 50. */
  readonly debounceMs?: number;
  /** Warn when less than this much of the certificate's life remains, ms. Default: a third of its lifetime, at most 24 h. */
  readonly warnBeforeMs?: number;
  readonly onWarning?: (message: string) => void;
  readonly clock?: Clock;
}

const FILE_KEYS = ["cert", "key", "ca"] as const;
type FileKey = (typeof FILE_KEYS)[number];
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Watched TLS files. Throws (naming the file and the reason) when the files cannot be read or do
 * not check out now.
 * @example const tls = tlsFiles({ cert: "/var/run/spiffe/svid.pem", key: "/var/run/spiffe/svid_key.pem", ca: "/var/run/spiffe/bundle.pem" })
 */
export function tlsFiles(input: TlsFilesOptions): TlsSource {
  const options = input;
  if (!isPlainObject(input))
    fail("tlsFiles options", options, "{ cert?, key?, ca?, pollMs?, debounceMs?, warnBeforeMs?, onWarning?, clock? }");
  checkKeys(input, [...FILE_KEYS, "pollMs", "debounceMs", "warnBeforeMs", "onWarning", "clock"], "tlsFiles");
  const files: Partial<Record<FileKey, string>> = {};
  for (const key of FILE_KEYS) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") fail(`tlsFiles.${key}`, value, "a file path");
    files[key] = resolve(value);
  }
  if (files.cert === undefined && files.ca === undefined)
    fail("tlsFiles", options, "at least `cert` + `key` (to present a certificate) or `ca` (to verify the peer)");
  if ((files.cert === undefined) !== (files.key === undefined))
    fail(
      files.cert === undefined ? "tlsFiles.cert" : "tlsFiles.key",
      undefined,
      "a file path: `cert` and `key` go together",
    );
  if (options.onWarning !== undefined && typeof options.onWarning !== "function")
    fail("tlsFiles.onWarning", options.onWarning, "a function (message: string) => void");
  return new FileTlsSource(files, {
    pollMs: (checkMs("tlsFiles.pollMs", options.pollMs, false) as number | undefined) ?? 1000,
    debounceMs: (checkMs("tlsFiles.debounceMs", options.debounceMs, false) as number | undefined) ?? 50,
    warnBeforeMs: checkMs("tlsFiles.warnBeforeMs", options.warnBeforeMs, false) as number | undefined,
    onWarning: options.onWarning ?? ((m) => console.warn(m)),
    clock: options.clock ?? systemClock,
  });
}

interface Settings {
  readonly pollMs: number;
  readonly debounceMs: number;
  readonly warnBeforeMs: number | undefined;
  readonly onWarning: (message: string) => void;
  readonly clock: Clock;
}

class FileTlsSource implements TlsSource {
  readonly #files: Partial<Record<FileKey, string>>;
  readonly #settings: Settings;
  readonly #listeners = new Set<(material: TlsMaterial) => void>();
  readonly #watchers: FSWatcher[] = [];
  #current: TlsMaterial;
  #appliedAt: number;
  /** The file texts last read (applied or refused), so an unchanged set is not re-checked or re-warned. */
  #lastTexts: string;
  #rejected = 0;
  #lastRejection: { at: number; reason: string } | null = null;
  #expiryWarned = 0;
  #poll: TimerHandle | undefined;
  #debounce: TimerHandle | undefined;
  readonly #reader = new SerialTask(
    () => this.#read(),
    () => this.#closed,
  );
  #closed = false;

  constructor(files: Partial<Record<FileKey, string>>, settings: Settings) {
    this.#files = files;
    this.#settings = settings;
    const pem: Record<string, string> = {};
    for (const key of FILE_KEYS) {
      const file = files[key];
      if (file === undefined) continue;
      try {
        pem[key] = readFileSync(file, "utf8");
      } catch (error) {
        throw new Error(
          `tlsFiles: cannot read ${key} file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          { cause: error },
        );
      }
    }
    try {
      this.#current = checkMaterial(pem, 1, settings.clock.wallNow());
    } catch (error) {
      throw new Error(`tlsFiles: ${this.#names()}: ${(error as Error).message}`, { cause: error });
    }
    this.#lastTexts = JSON.stringify(pem);
    this.#appliedAt = settings.clock.wallNow();
    const dirs = new Set(Object.values(files).map((f) => dirname(f)));
    const names = new Set(Object.values(files).map((f) => basename(f)));
    for (const dir of dirs) {
      try {
        // Any entry of the directory: cert-manager swaps a `..data` symlink the files point through.
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name) || name.startsWith("..")) this.#onEvent();
        });
        watcher.on("error", () => watcher.close());
        this.#watchers.push(watcher);
      } catch {
        // Watching unsupported or the directory unreadable: polling alone.
      }
    }
    this.#checkExpiry();
    this.#schedulePoll();
  }

  get current(): TlsMaterial {
    return this.#current;
  }

  onChange(listener: (material: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(): TlsSnapshot {
    return {
      source: "files",
      files: { ...this.#files },
      appliedAt: this.#appliedAt,
      ...materialSnapshot(this.#current, this.#settings.clock.wallNow()),
      rejected: this.#rejected,
      lastRejection: this.#lastRejection,
    };
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers.length = 0;
    this.#poll?.cancel();
    this.#debounce?.cancel();
    this.#listeners.clear();
  }

  /** Reads the files now (as a watch event or the poll would), resolving once the result applied or was refused. */
  async reload(): Promise<void> {
    await this.#reader.run();
  }

  #names(): string {
    return FILE_KEYS.filter((k) => this.#files[k] !== undefined)
      .map((k) => `${k} ${this.#files[k]}`)
      .join(", ");
  }

  #onEvent(): void {
    if (this.#closed) return;
    this.#debounce?.cancel();
    this.#debounce = this.#settings.clock.setTimer(() => {
      this.#debounce = undefined;
      void this.reload();
    }, this.#settings.debounceMs);
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    this.#poll = this.#settings.clock.setTimer(() => {
      this.#checkExpiry();
      void this.reload();
      this.#schedulePoll();
    }, this.#settings.pollMs);
  }

  async #read(): Promise<void> {
    const pem: Record<string, string> = {};
    for (const key of FILE_KEYS) {
      const file = this.#files[key];
      if (file === undefined) continue;
      try {
        pem[key] = await readFile(file, "utf8");
      } catch (error) {
        // Gone for a moment mid-swap, or unreadable: keep serving; the next event or poll reads again.
        this.#refuse(
          `cannot read ${key} file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          undefined,
        );
        return;
      }
    }
    if (this.#closed) return;
    const texts = JSON.stringify(pem);
    if (texts === this.#lastTexts) return;
    let material: TlsMaterial;
    try {
      material = checkMaterial(pem, this.#current.version + 1, this.#settings.clock.wallNow());
    } catch (error) {
      this.#refuse((error as Error).message, texts);
      return;
    }
    this.#lastTexts = texts;
    this.#current = material;
    this.#appliedAt = this.#settings.clock.wallNow();
    this.#checkExpiry();
    for (const listener of this.#listeners) {
      try {
        listener(material);
      } catch (error) {
        this.#settings.onWarning(`tlsFiles: a listener of the new material threw: ${String(error)}`);
      }
    }
  }

  #refuse(reason: string, texts: string | undefined): void {
    // The same refused set is warned about once, not at every poll.
    if (texts !== undefined && texts === this.#lastTexts) return;
    if (texts !== undefined) this.#lastTexts = texts;
    this.#rejected++;
    this.#lastRejection = { at: this.#settings.clock.wallNow(), reason };
    this.#settings.onWarning(
      `tlsFiles: refused new TLS material (${this.#names()}): ${reason}; still serving version ${this.#current.version} (serial ${this.#current.serial ?? "—"})`,
    );
  }

  #checkExpiry(): void {
    const m = this.#current;
    if (m.notAfter === undefined || m.notBefore === undefined) return;
    const now = this.#settings.clock.wallNow();
    const left = m.notAfter - now;
    const warnBefore = this.#settings.warnBeforeMs ?? Math.min(DAY_MS, (m.notAfter - m.notBefore) / 3);
    // 1: warned it is close; 2: warned it lapsed — per version.
    const warned = this.#expiryWarned >> 2 === m.version ? this.#expiryWarned & 3 : 0;
    if (left <= 0 && warned < 2) {
      this.#settings.onWarning(
        `tlsFiles: the certificate (serial ${m.serial}, ${m.identity ?? "no SPIFFE ID"}) expired at ${new Date(m.notAfter).toISOString()} and nothing replaced it: peers will refuse it`,
      );
      this.#expiryWarned = (m.version << 2) | 2;
    } else if (left > 0 && left <= warnBefore && warned < 1) {
      this.#settings.onWarning(
        `tlsFiles: the certificate (serial ${m.serial}, ${m.identity ?? "no SPIFFE ID"}) expires in ${Math.round(left / 1000)} s (${new Date(m.notAfter).toISOString()}) and has not been rotated`,
      );
      this.#expiryWarned = (m.version << 2) | 1;
    }
  }
}

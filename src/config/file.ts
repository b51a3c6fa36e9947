/**
 * `fileConfig(path)` — each service's config document from a file (JSON or YAML) that an
 * operator, config management or a mounted ConfigMap provides. `{service}` in the path is the
 * service's name, so one mesh default serves every client: `fileConfig("/etc/weft/{service}.yaml")`.
 *
 * The file is watched and polled by `core/watched-file.ts` (its directory is watched, so an atomic
 * rename-over is seen as well as an in-place write). A version is the content's hash
 * (`sha256:` + 12 hex digits): the same text is the same version wherever and whenever it is read.
 *
 * An empty file is not a document either (an in-place write caught between its truncate and its
 * write reads empty): with a version serving it is a failure, and the version keeps serving; an
 * empty document is `{}`. Writers should still prefer a new file renamed over the old one.
 *
 * A file that does not exist at start is normal (no config for this service yet): one warning,
 * in case the path is wrong, and the client's own options serve until it appears. A file removed
 * after a version was published, one that does not parse, or one that cannot be read (EACCES)
 * turns the watch stale with a warning, and the last good version keeps serving; the poll reads it
 * again every `pollMs`, which is this source's retry.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import type { ConfigSource, ConfigWatch, ConfigWatchContext } from "../core/config-source.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { WatchedFile } from "../core/watched-file.js";
import { checkServiceName } from "./service.js";
import { ConfigWatchBase } from "./watch.js";

export interface FileConfigOptions {
  /** How often the file is read even without a watch event, ms. Default 2 000. */
  readonly pollMs?: number;
  /** Wait after a watch event before reading, so a burst of writes is read once, ms. Default 25. */
  readonly debounceMs?: number;
}

const DEFAULT_POLL_MS = 2_000;
const DEFAULT_DEBOUNCE_MS = 25;
const SERVICE = "{service}";

/**
 * Config documents from files. Throws `InvalidOptionsError` on bad options; `watch()` throws it
 * for a service name that cannot be part of a path (see `etcdConfig`).
 * @param path The file (relative paths resolve against the working directory now); `{service}`
 *   is replaced by each client's service name.
 * @example
 * const mesh = createMesh({ defaults: { configSource: fileConfig("/etc/weft/{service}.yaml") } });
 * @example fileConfig("./catalog.json", { pollMs: 5000 })
 */
export function fileConfig(path: string, options: FileConfigOptions = {}): ConfigSource {
  if (typeof path !== "string" || path.length === 0)
    fail("fileConfig path", path, 'a non-empty file path string, e.g. "/etc/weft/{service}.yaml"');
  if (!isPlainObject(options)) fail("fileConfig options", options, "{ pollMs?, debounceMs? }");
  checkKeys(options, ["pollMs", "debounceMs"], "fileConfig");
  const pollMs = (checkMs("fileConfig.pollMs", options.pollMs, false) as number | undefined) ?? DEFAULT_POLL_MS;
  const debounceMs =
    (checkMs("fileConfig.debounceMs", options.debounceMs, false) as number | undefined) ?? DEFAULT_DEBOUNCE_MS;
  const pattern = resolve(path);
  return Object.freeze({
    name: `file:${pattern}`,
    watch(service: string, context: ConfigWatchContext): ConfigWatch {
      // A name inside a path must not climb out of it ("../x") or end it ("a/b").
      if (pattern.includes(SERVICE)) checkServiceName("fileConfig", service);
      return new FileConfigWatch(pattern.replaceAll(SERVICE, service), pollMs, debounceMs, context);
    },
  });
}

/** `sha256:` and the first 12 hex digits of the text's SHA-256. */
function contentVersion(text: string): string {
  return `sha256:${createHash("sha256").update(text, "utf8").digest("hex").slice(0, 12)}`;
}

class FileConfigWatch extends ConfigWatchBase {
  readonly #file: WatchedFile;
  /** Whether the missing file has been reported since it was last seen. */
  #missingReported = false;

  constructor(file: string, pollMs: number, debounceMs: number, context: ConfigWatchContext) {
    super(`file:${file}`, context);
    this.#file = new WatchedFile({
      file,
      pollMs,
      debounceMs,
      clock: context.clock,
      onText: (text) => {
        this.#missingReported = false;
        // An empty file is no document: a write caught between truncate and write reads empty,
        // and must not apply as "no overrides". (An empty document is `{}`.)
        if (text.trim() === "") {
          if (this.value !== undefined)
            this.failure("the file is empty (a write in progress?); write `{}` for no overrides", false);
          else this.healthy();
          return;
        }
        this.offer(text, contentVersion(text));
      },
      onError: (error) => this.#unreadable(error),
    });
  }

  protected start(): void {
    this.#file.start();
  }

  protected async stop(): Promise<void> {
    this.#file.close();
  }

  protected override refresh(): void {
    this.#file.refresh();
  }

  #unreadable(error: NodeJS.ErrnoException): void {
    const code = error.code ?? String(error);
    if (code !== "ENOENT") return this.failure(`cannot read the file: ${code}`, false);
    if (this.value !== undefined) return this.failure("the file was removed (ENOENT)", false);
    // No config yet: normal, but said once, in case the path is wrong.
    if (!this.#missingReported) this.notice("does not exist; the client's own options serve until it does");
    this.#missingReported = true;
    this.healthy();
  }
}

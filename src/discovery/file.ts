/**
 * `fileDiscovery(path)` — endpoints from a JSON file that an operator, a config-management tool or
 * a sidecar-less agent rewrites. The file is watched and polled by `core/watched-file.ts` (its
 * directory is watched, so an atomic rename-over is seen as well as an in-place write).
 *
 * A file is read whole and must parse: a half-written file (invalid JSON), a missing file or one
 * with no valid endpoint keeps the previous set serving, marked stale, with a warning. A single
 * bad entry is rejected with a warning naming it, and the other entries serve.
 *
 * Format: an array of endpoints, or `{ "endpoints": [...] }`; an endpoint is a URL string or
 * `{ "url": "http://10.0.0.7:8080", "weight": 2, "zone": "eu-west-1a", "metadata": { … } }`.
 */
import { resolve } from "node:path";
import type { Discovery, ResolverContext } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { WatchedFile } from "../core/watched-file.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { SourceResolver } from "./source.js";
import { validateEndpoint } from "./static.js";

export interface FileDiscoveryOptions {
  /** How often the file is read even without a watch event, ms. Default 2 000. */
  readonly pollMs?: number;
  /** Wait after a watch event before reading, so a burst of writes is read once, ms. Default 25. */
  readonly debounceMs?: number;
}

const DEFAULT_POLL_MS = 2_000;
const DEFAULT_DEBOUNCE_MS = 25;

/**
 * @param path The JSON file (relative paths resolve against the working directory now).
 * @example fileDiscovery("/etc/weft/catalog.json", { pollMs: 5000 })
 */
export function fileDiscovery(path: string, options: FileDiscoveryOptions = {}): Discovery {
  if (typeof path !== "string" || path.length === 0) fail("fileDiscovery path", path, "a non-empty file path string");
  if (!isPlainObject(options)) fail("fileDiscovery options", options, "{ pollMs?, debounceMs? }");
  checkKeys(options, ["pollMs", "debounceMs"], "fileDiscovery");
  const pollMs = (checkMs("fileDiscovery.pollMs", options.pollMs, false) as number | undefined) ?? DEFAULT_POLL_MS;
  const debounceMs =
    (checkMs("fileDiscovery.debounceMs", options.debounceMs, false) as number | undefined) ?? DEFAULT_DEBOUNCE_MS;
  const file = resolve(path);
  return {
    key: `file:${file}`,
    create: (context) => new FileResolver(file, pollMs, debounceMs, context),
  };
}

class FileResolver extends SourceResolver {
  readonly #file: WatchedFile;

  constructor(file: string, pollMs: number, debounceMs: number, context: ResolverContext) {
    super(`file:${file}`, context);
    this.#file = new WatchedFile({
      file,
      pollMs,
      debounceMs,
      clock: context.clock,
      onText: (text) => this.#read(text),
      onError: (error) => this.failure(`cannot read the file: ${error.code ?? String(error)}`, false),
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

  /** A changed text: its endpoints, or a failure saying why there are none. */
  #read(text: string): void {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      this.failure(`invalid JSON (${(error as Error).message}); a write may be in progress`, false);
      return;
    }
    const entries = Array.isArray(document)
      ? document
      : isPlainObject(document) && Array.isArray(document.endpoints)
        ? document.endpoints
        : undefined;
    if (entries === undefined) {
      this.failure(
        `expected an array of endpoints or { "endpoints": [...] }, got ${JSON.stringify(document).slice(0, 80)}`,
        false,
      );
      return;
    }
    const endpoints: EndpointInfo[] = [];
    entries.forEach((entry: unknown, i: number) => {
      try {
        endpoints.push(validateEndpoint(entry as EndpointInfo, `endpoints[${i}]`));
      } catch (error) {
        this.reject(`endpoints[${i}]`, entry, (error as Error).message);
      }
    });
    if (endpoints.length === 0) {
      this.failure(
        entries.length === 0 ? "the file lists no endpoints" : "no entry in the file is a valid endpoint",
        false,
      );
      return;
    }
    this.publish(endpoints);
  }
}

/**
 * Where `weft config` keeps a service's config in etcd, and how it writes it.
 *
 *   <prefix><service>                          the document, canonical JSON: what clients watch
 *   <prefix>.meta/<service>                    { by, at, message, sha256 } of the document
 *   <prefix>.history/<service>/<revision:020>  { revision, document, meta }: each version replaced
 *
 * A client watches exactly `<prefix><service>` (`etcdConfig`), so it never sees the other two; a
 * service name cannot start with "." (`checkServiceName`), so `.meta` and `.history` are nobody's
 * service. A version is the key's `mod_revision`, as the clients report it (`rev 42`).
 *
 * Every write is one transaction, a compare-and-swap on the revision the operator saw: the key's
 * `mod_revision` equals it (`create_revision` 0: the key does not exist), or nothing is written
 * and the version that won is returned. Its success branch moves the version it replaces into
 * history, then writes the document and its meta, so history, meta and document never disagree
 * and two operators never lose an update to each other.
 *
 * A version written behind weft's back (`etcdctl put`) has no meta, or a meta whose sha256 is of
 * another text: it shows as written outside weft config. The version it replaced never reached
 * history; the meta still describes it (and its own `mod_revision` is that version's, written in
 * the same transaction), so while etcd has not compacted it away it is read back at that revision
 * (`range` at a revision), listed, and archived by the next write.
 */
import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { parseConfigText } from "../config/parse.js";
import { EtcdError, type EtcdClient, type EtcdKeyValue, type EtcdOp } from "../etcd/client.js";

/** Who wrote a version, when, why, and the sha256 (hex) of the text they wrote. */
export interface Meta {
  readonly by: string;
  /** ISO 8601, UTC. */
  readonly at: string;
  readonly message: string;
  readonly sha256: string;
}

/** One version of a service's config. */
export interface Version {
  readonly revision: number;
  /** The value as stored (canonical JSON when weft wrote it). */
  readonly text: string;
  /** The parsed document; undefined when the text does not parse (`parseError` says why). */
  readonly document: unknown;
  readonly parseError: string | undefined;
  /** Null: written outside weft config (no meta, or a meta of another text). */
  readonly meta: Meta | null;
}

/** What a write compares against and replaces: the key now, and the version its meta describes when that differs. */
export interface CurrentState {
  /** The key's version; undefined when the key does not exist. */
  readonly current: Version | undefined;
  /** The last version weft wrote, when a write outside weft replaced it (or deleted the key) and etcd still has it. */
  readonly unarchived: Version | undefined;
}

export type WriteResult =
  | { readonly written: true; readonly revision: number }
  | { readonly written: false; readonly current: Version | undefined };

/** The text weft stores: JSON, keys sorted at every level, 2-space indent, a final newline. */
export function canonicalJson(document: unknown): string {
  return `${JSON.stringify(sortKeys(document), null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted;
}

export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** Two documents hold the same config (what clients compare: key order and formatting do not count). */
export const sameDocument = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a, b);

export class ConfigStore {
  readonly key: string;
  readonly metaKey: string;
  readonly historyPrefix: string;
  readonly #etcd: EtcdClient;

  constructor(etcd: EtcdClient, prefix: string, service: string) {
    this.#etcd = etcd;
    this.key = prefix + service;
    this.metaKey = `${prefix}.meta/${service}`;
    this.historyPrefix = `${prefix}.history/${service}/`;
  }

  /** The key and its meta, read in one transaction (one revision of the store). */
  async read(): Promise<CurrentState> {
    const { results } = await this.#etcd.txn([], [{ range: this.key }, { range: this.metaKey }]);
    const [kv, metaKv] = results;
    const meta = parseMeta(metaKv?.value);
    const current = kv === undefined ? undefined : toVersion(kv.modRevision, kv.value, meta);
    let unarchived: Version | undefined;
    if (metaKv !== undefined && meta !== null && metaKv.modRevision !== kv?.modRevision) {
      const then = await this.#readAt(metaKv.modRevision);
      // A text the meta does not describe was not written by weft at that revision either.
      if (then !== undefined && sha256(then.value) === meta.sha256)
        unarchived = toVersion(then.modRevision, then.value, meta);
    }
    return { current, unarchived };
  }

  /** Every version known, newest first: the key, the one its meta describes when not archived, history. */
  async versions(): Promise<{ state: CurrentState; versions: Version[] }> {
    const [state, { kvs }] = await Promise.all([this.read(), this.#etcd.rangePrefix(this.historyPrefix)]);
    const byRevision = new Map<number, Version>();
    for (const kv of kvs) {
      const entry = parseHistoryEntry(kv);
      if (entry !== undefined) byRevision.set(entry.revision, entry);
    }
    for (const version of [state.unarchived, state.current])
      if (version !== undefined) byRevision.set(version.revision, version);
    return { state, versions: [...byRevision.values()].sort((a, b) => b.revision - a.revision) };
  }

  /**
   * Writes `text` (canonical JSON) with `meta` if the key's revision is still `expected` (0: the
   * key does not exist), moving the versions in `state` into history in the same transaction.
   */
  async write(state: CurrentState, expected: number, text: string, meta: Meta): Promise<WriteResult> {
    const archive: EtcdOp[] = [];
    for (const version of [state.unarchived, state.current]) {
      if (version === undefined) continue;
      archive.push({ put: this.historyKey(version.revision), value: historyEntry(version) });
    }
    const result = await this.#etcd.txn(
      [
        expected === 0
          ? { key: this.key, target: "create", equals: 0 }
          : { key: this.key, target: "mod", equals: expected },
      ],
      [...archive, { put: this.key, value: text }, { put: this.metaKey, value: JSON.stringify(meta) }],
      [{ range: this.key }, { range: this.metaKey }],
    );
    if (result.succeeded) return { written: true, revision: result.revision };
    const [kv, metaKv] = result.results;
    const current = kv === undefined ? undefined : toVersion(kv.modRevision, kv.value, parseMeta(metaKv?.value));
    // Our own write, committed by a host whose answer was lost and then compared again by the next
    // host (EtcdClient moves on after a timeout or a 503): it is written, not a conflict.
    if (current?.meta !== null && current?.meta !== undefined && isDeepStrictEqual(current.meta, meta))
      return { written: true, revision: current.revision };
    return { written: false, current };
  }

  historyKey(revision: number): string {
    return this.historyPrefix + String(revision).padStart(20, "0");
  }

  async #readAt(revision: number): Promise<EtcdKeyValue | undefined> {
    try {
      const { kv } = await this.#etcd.range(this.key, revision);
      return kv?.modRevision === revision ? kv : undefined;
    } catch (error) {
      // Compacted away: that version is gone.
      if (error instanceof EtcdError && error.code === 11) return undefined;
      throw error;
    }
  }
}

function toVersion(revision: number, text: string, meta: Meta | null): Version {
  let document: unknown;
  let parseError: string | undefined;
  try {
    document = parseConfigText(text, `rev ${revision}`);
  } catch (error) {
    parseError = error instanceof Error ? error.message : String(error);
  }
  return { revision, text, document, parseError, meta: meta !== null && meta.sha256 === sha256(text) ? meta : null };
}

/** A history entry: `{ revision, document, meta }`, or `{ revision, text, meta }` for a text that does not parse. */
function historyEntry(version: Version): string {
  const body = version.parseError === undefined ? { document: version.document } : { text: version.text };
  return JSON.stringify({ revision: version.revision, ...body, meta: version.meta });
}

function parseHistoryEntry(kv: EtcdKeyValue): Version | undefined {
  const entry = parseJson(kv.value);
  if (entry === undefined || typeof entry.revision !== "number") return undefined;
  const meta = parseMeta(entry.meta === null ? undefined : JSON.stringify(entry.meta));
  if (typeof entry.text === "string") return toVersion(entry.revision, entry.text, meta);
  const text = canonicalJson(entry.document);
  // The meta's sha256 is of the text weft stored; a document archived from a text written
  // outside weft (YAML, other spacing) keeps its null meta whatever its canonical form.
  return { revision: entry.revision, text, document: entry.document, parseError: undefined, meta };
}

function parseMeta(text: string | undefined): Meta | null {
  const meta = text === undefined ? undefined : parseJson(text);
  if (meta === undefined) return null;
  const { by, at, message, sha256: hash } = meta;
  if (typeof by !== "string" || typeof at !== "string" || typeof hash !== "string") return null;
  return { by, at, message: typeof message === "string" ? message : "", sha256: hash };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

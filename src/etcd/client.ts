/**
 * A small etcd v3 client over etcd's JSON gateway (HTTP/1.1 + JSON, keys and values base64),
 * just what discovery, registration, dynamic config and the `weft config` CLI need: range (a prefix
 * or one key), put, delete, compact, a transaction (compare-and-swap), a watch (a prefix or one
 * key), and leases. Not the `etcd3` package: it brings
 * gRPC (@grpc/grpc-js, protobuf) for a handful of calls, while etcd ≥ 3.4 serves this gateway at
 * /v3 on its client port and undici is ours already.
 *
 * Every call has a timeout (an unref'd timer aborting the request). With several `hosts`, a
 * connection error, a timeout or a 503 (no leader) moves on to the next host, and the host that
 * answered is tried first next time. The client owns its undici `Agent`: `close()` aborts what is
 * in flight and releases every socket.
 *
 * A watch is one long POST /v3/watch answered with newline-separated `{ "result": WatchResponse }`
 * objects. The gateway (3.4) answers only once the request body has ended, so the stream is one-way
 * (no progress requests later): a caller that must notice a frozen etcd probes it beside the watch.
 */
import { Agent, request } from "undici";

export interface EtcdClientOptions {
  /** Gateway URLs, e.g. `["http://127.0.0.1:2379"]`, tried in order on connection errors. */
  readonly hosts: readonly string[];
  /** Timeout per call and host, ms. Default 5 000. */
  readonly requestTimeoutMs?: number;
}

export interface EtcdKeyValue {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  /** The lease the key is attached to ("0" for none). */
  readonly lease: string;
}

export interface EtcdEvent extends EtcdKeyValue {
  readonly type: "PUT" | "DELETE";
}

export interface EtcdWatchHandlers {
  /** A batch of changes; `revision` is the store's revision when it was sent. */
  onEvents(events: readonly EtcdEvent[], revision: number): void;
  /** The watch was created, or etcd sent a progress notification. */
  onProgress?(revision: number): void;
  /** etcd cancelled the watch; `compactRevision` is set when the start revision was compacted. */
  onCanceled(compactRevision: number | undefined, reason: string): void;
  /** The stream failed or ended. Not called after `close()`. */
  onClose(error: Error): void;
}

export interface EtcdWatch {
  close(): void;
}

/**
 * One condition of a transaction: the key's `mod` revision (its last write), `create` revision
 * or `version` (writes since it was created) equals `equals`; each is 0 when the key does not exist.
 */
export interface EtcdCompare {
  readonly key: string;
  readonly target: "mod" | "create" | "version";
  readonly equals: number;
}

/** One operation of a transaction: a put, a read of one key, or a delete of one key. */
export type EtcdOp =
  { readonly put: string; readonly value: string } | { readonly range: string } | { readonly delete: string };

export interface EtcdTxnResult {
  /** True when every comparison held and `success` ran; false when `failure` ran. */
  readonly succeeded: boolean;
  /** The store's revision after the transaction (the revision of its puts when it wrote). */
  readonly revision: number;
  /** One entry per operation of the branch that ran: the key read by a `range` (undefined when absent, and for a put or delete). */
  readonly results: readonly (EtcdKeyValue | undefined)[];
}

/** etcd answered with an error (`code` is the gRPC status code: 11 is a revision compacted away). */
export class EtcdError extends Error {
  readonly code: number;
  readonly status: number;
  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** No host answered (connection refused or reset, a timeout, or 503 from every one): the message lists each. */
export class EtcdUnreachableError extends Error {}

type Json = Record<string, unknown>;
const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
const unb64 = (text: unknown): string => (typeof text === "string" ? Buffer.from(text, "base64").toString("utf8") : "");
const num = (value: unknown): number => (value === undefined ? 0 : Number(value));

/** The `range_end` covering every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`). */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = (end[i] as number) + 1;
      return end.toString("base64");
    }
  }
  return Buffer.from([0]).toString("base64");
}

/**
 * @example
 * const etcd = new EtcdClient({ hosts: ["http://127.0.0.1:2379"] });
 * const { revision, kvs } = await etcd.rangePrefix("/services/catalog/");
 * await etcd.close();
 */
export class EtcdClient {
  readonly hosts: readonly string[];
  readonly requestTimeoutMs: number;
  readonly #agent: Agent;
  readonly #inflight = new Set<AbortController>();
  #current = 0;
  #closed = false;

  constructor(options: EtcdClientOptions) {
    this.hosts = options.hosts.map((h) => h.replace(/\/+$/, ""));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#agent = new Agent({ connect: { timeout: this.requestTimeoutMs }, keepAliveTimeout: 4_000 });
  }

  async rangePrefix(prefix: string): Promise<{ revision: number; kvs: EtcdKeyValue[] }> {
    const res = await this.call("/v3/kv/range", { key: b64(prefix), range_end: prefixRangeEnd(prefix) });
    return { revision: headerRevision(res), kvs: keyValues(res) };
  }

  /**
   * One exact key: its value, or undefined when it does not exist; `revision` is the store's. With
   * `atRevision`, the key as it was then (etcd keeps old versions until a compaction; an older
   * revision fails with `EtcdError` code 11).
   */
  async range(key: string, atRevision?: number): Promise<{ revision: number; kv: EtcdKeyValue | undefined }> {
    const res = await this.call("/v3/kv/range", {
      key: b64(key),
      ...(atRevision === undefined ? {} : { revision: String(atRevision) }),
    });
    return { revision: headerRevision(res), kv: keyValues(res)[0] };
  }

  /** The number of keys under `prefix` and the store's revision: a cheap liveness probe. */
  async count(prefix: string): Promise<{ revision: number; count: number }> {
    const res = await this.call("/v3/kv/range", {
      key: b64(prefix),
      range_end: prefixRangeEnd(prefix),
      count_only: true,
    });
    return { revision: headerRevision(res), count: num(res.count) };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    return headerRevision(
      await this.call("/v3/kv/put", { key: b64(key), value: b64(value), ...(lease === undefined ? {} : { lease }) }),
    );
  }

  /** Deletes `key`, or every key under it with `prefix: true`; resolves with the count deleted. */
  async delete(key: string, options: { prefix?: boolean } = {}): Promise<number> {
    const res = await this.call("/v3/kv/deleterange", {
      key: b64(key),
      ...(options.prefix === true ? { range_end: prefixRangeEnd(key) } : {}),
    });
    return num(res.deleted);
  }

  /**
   * A transaction: when every comparison holds, runs `success`, else `failure`, atomically. The
   * gateway leaves out fields that are false or zero (`succeeded`, a range's `kvs`), read as such.
   * @example
   * // compare-and-swap: write only if nobody wrote since revision 42
   * const { succeeded } = await etcd.txn([{ key, target: "mod", equals: 42 }], [{ put: key, value }], [{ range: key }]);
   */
  async txn(
    compare: readonly EtcdCompare[],
    success: readonly EtcdOp[],
    failure: readonly EtcdOp[] = [],
  ): Promise<EtcdTxnResult> {
    const res = await this.call("/v3/kv/txn", {
      compare: compare.map((c) => {
        const [target, field] = COMPARE[c.target];
        return { key: b64(c.key), target, result: "EQUAL", [field]: String(c.equals) };
      }),
      success: success.map(txnOp),
      failure: failure.map(txnOp),
    });
    const responses = Array.isArray(res.responses) ? (res.responses as Json[]) : [];
    return {
      succeeded: res.succeeded === true,
      revision: headerRevision(res),
      results: responses.map((r) => keyValues((r.response_range ?? {}) as Json)[0]),
    };
  }

  /** Discards the history before `revision` (watches from older revisions get cancelled). */
  async compact(revision: number): Promise<void> {
    await this.call("/v3/kv/compaction", { revision: String(revision), physical: true });
  }

  /** Resolves with the lease id (a decimal int64, kept as a string) and the TTL etcd granted. */
  async leaseGrant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }> {
    const res = await this.call("/v3/lease/grant", { TTL: String(ttlSeconds) });
    if (typeof res.error === "string" && res.error !== "") throw new EtcdError(200, 0, res.error);
    return { id: String(res.ID), ttlSeconds: num(res.TTL) };
  }

  /** One keep-alive; resolves with the remaining TTL in seconds, 0 when the lease is gone. */
  async leaseKeepAlive(id: string): Promise<number> {
    const res = await this.call("/v3/lease/keepalive", { ID: id });
    return num((res.result as Json | undefined)?.TTL);
  }

  /** Revokes the lease, deleting its keys at once. A lease already gone is not an error. */
  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.call("/v3/lease/revoke", { ID: id });
    } catch (error) {
      if (!(error instanceof EtcdError && error.code === 5)) throw error;
    }
  }

  /** POSTs `body` to `path` on the first host that answers; throws `EtcdError` on an error reply. */
  async call(path: string, body: Json): Promise<Json> {
    const errors: string[] = [];
    for (let i = 0; i < this.hosts.length; i++) {
      const index = (this.#current + i) % this.hosts.length;
      const host = this.hosts[index] as string;
      this.#checkOpen();
      const controller = new AbortController();
      this.#inflight.add(controller);
      // Real time: a timeout on a real HTTP request to etcd (the client takes no Clock).
      // eslint-disable-next-line no-restricted-globals
      const timer = setTimeout(
        () => controller.abort(new Error(`timed out after ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs,
      ).unref();
      try {
        const res = await request(host + path, {
          method: "POST",
          body: JSON.stringify(body),
          headers: { "content-type": "application/json" },
          dispatcher: this.#agent,
          signal: controller.signal,
        });
        const text = await res.body.text();
        const json = parse(text);
        if (res.statusCode === 200) {
          this.#current = index;
          return json;
        }
        const error = new EtcdError(
          res.statusCode,
          num(json.code),
          typeof json.message === "string" ? json.message : text.slice(0, 200),
        );
        if (res.statusCode !== 503) throw error;
        errors.push(`${host}: ${error.message}`);
      } catch (error) {
        if (error instanceof EtcdError || this.#closed) throw error;
        errors.push(`${host}: ${describeError(error, controller)}`);
      } finally {
        clearTimeout(timer);
        this.#inflight.delete(controller);
      }
    }
    throw new EtcdUnreachableError(`etcd unreachable (${errors.join("; ")})`);
  }

  /**
   * Watches every key under `prefix` from `startRevision`. Connection errors before the stream
   * opens move on to the next host; after that, the stream's end or failure goes to `onClose`.
   */
  watch(prefix: string, startRevision: number, handlers: EtcdWatchHandlers): EtcdWatch {
    return this.#watch({ key: b64(prefix), range_end: prefixRangeEnd(prefix) }, startRevision, handlers);
  }

  /** Watches the one key `key` (no range: `key` + "x" is not seen), as `watch` does a prefix. */
  watchKey(key: string, startRevision: number, handlers: EtcdWatchHandlers): EtcdWatch {
    return this.#watch({ key: b64(key) }, startRevision, handlers);
  }

  #watch(range: { key: string; range_end?: string }, startRevision: number, handlers: EtcdWatchHandlers): EtcdWatch {
    this.#checkOpen();
    const controller = new AbortController();
    this.#inflight.add(controller);
    let closed = false;
    const finish = (error?: Error): void => {
      if (closed) return;
      closed = true;
      this.#inflight.delete(controller);
      controller.abort();
      if (error !== undefined && !this.#closed) handlers.onClose(error);
    };
    const body = JSON.stringify({ create_request: { ...range, start_revision: String(startRevision) } });
    const open = async (): Promise<void> => {
      const errors: string[] = [];
      for (let i = 0; i < this.hosts.length && !closed; i++) {
        const index = (this.#current + i) % this.hosts.length;
        const host = this.hosts[index] as string;
        try {
          const res = await request(`${host}/v3/watch`, {
            method: "POST",
            body,
            dispatcher: this.#agent,
            signal: controller.signal,
            headersTimeout: this.requestTimeoutMs,
            bodyTimeout: 0,
          });
          if (res.statusCode !== 200) {
            const text = await res.body.text();
            return finish(new Error(`watch refused by ${host}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          }
          this.#current = index;
          return consume(res.body, handlers, finish);
        } catch (error) {
          errors.push(`${host}: ${describeError(error, controller)}`);
        }
      }
      finish(new Error(`etcd unreachable (${errors.join("; ")})`));
    };
    void open();
    return { close: () => finish() };
  }

  /** Aborts calls and watches in flight and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#inflight) controller.abort(new Error("etcd client closed"));
    this.#inflight.clear();
    await this.#agent.destroy();
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("etcd client is closed");
  }
}

/** A comparison's target in the gateway's JSON, and the field holding its value. */
const COMPARE = {
  mod: ["MOD", "mod_revision"],
  create: ["CREATE", "create_revision"],
  version: ["VERSION", "version"],
} as const;

function txnOp(op: EtcdOp): Json {
  if ("put" in op) return { request_put: { key: b64(op.put), value: b64(op.value) } };
  if ("range" in op) return { request_range: { key: b64(op.range) } };
  return { request_delete_range: { key: b64(op.delete) } };
}

/** Reads newline-separated watch responses from the stream and dispatches them. */
function consume(stream: NodeJS.ReadableStream, handlers: EtcdWatchHandlers, finish: (error: Error) => void): void {
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line !== "") dispatch(parse(line), handlers, finish);
    }
  });
  stream.on("error", (error: Error) => finish(new Error(`watch stream failed: ${describeError(error)}`)));
  stream.on("end", () => finish(new Error("watch stream ended")));
}

function dispatch(message: Json, handlers: EtcdWatchHandlers, finish: (error: Error) => void): void {
  const result = message.result as Json | undefined;
  if (result === undefined) {
    const error = message.error as Json | undefined;
    return finish(
      new Error(
        `watch error: ${typeof error?.message === "string" ? error.message : JSON.stringify(message).slice(0, 200)}`,
      ),
    );
  }
  const revision = headerRevision(result);
  if (result.canceled === true) {
    const compact = num(result.compact_revision);
    return handlers.onCanceled(
      compact > 0 ? compact : undefined,
      typeof result.cancel_reason === "string" ? result.cancel_reason : "canceled",
    );
  }
  const events = Array.isArray(result.events) ? (result.events as Json[]) : [];
  if (events.length === 0) return handlers.onProgress?.(revision);
  handlers.onEvents(
    events.map((event) => {
      const kv = (event.kv ?? {}) as Json;
      return { type: event.type === "DELETE" ? "DELETE" : "PUT", ...keyValue(kv), lease: leaseOf(kv) };
    }),
    revision,
  );
}

function keyValues(res: Json): EtcdKeyValue[] {
  const kvs = Array.isArray(res.kvs) ? (res.kvs as Json[]) : [];
  return kvs.map((kv) => ({ ...keyValue(kv), lease: leaseOf(kv) }));
}

function keyValue(kv: Json): { key: string; value: string; modRevision: number } {
  return { key: unb64(kv.key), value: unb64(kv.value), modRevision: num(kv.mod_revision) };
}

/** The key's lease: a decimal int64, which etcd's JSON sends as a string; "0" (none) when absent. */
function leaseOf(kv: Json): string {
  if (typeof kv.lease === "string") return kv.lease;
  return typeof kv.lease === "number" ? String(kv.lease) : "0";
}

function headerRevision(message: Json): number {
  return num((message.header as Json | undefined)?.revision);
}

function parse(text: string): Json {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Json) : {};
  } catch {
    return {};
  }
}

function describeError(error: unknown, controller?: AbortController): string {
  const reason: unknown = controller?.signal.aborted === true ? controller.signal.reason : error;
  if (reason instanceof Error) {
    const code = (reason as { code?: unknown }).code;
    const cause = reason.cause instanceof Error ? ` (${reason.cause.message})` : "";
    return typeof code === "string" && !reason.message.includes(code)
      ? `${code} ${reason.message}${cause}`
      : `${reason.message}${cause}`;
  }
  return String(reason);
}

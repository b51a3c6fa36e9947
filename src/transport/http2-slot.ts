/**
 * One HTTP/2 session of an origin and its accounting: streams open, the server's stream limit,
 * the last stream id of a GOAWAY it received. It is the host of its streams' responses
 * (http2-response.ts) and tells its origin's sessions (http2-session.ts) when a slot frees up.
 * While a stream is open the session is ref'd and has no idle timer; with none it is unref'd (it
 * does not keep the process alive) and its idle timer runs.
 */
import type { ClientHttp2Session } from "node:http2";
import type { StreamHost } from "./http2-response.js";

/**
 * Streams a session carries before it is retired: a client has 2^30 stream ids, and Node destroys a
 * session that runs out of them with every stream on it; retiring it early lets those finish.
 */
const MAX_STREAMS_PER_SESSION = 1_000_000_000;

/** A stream waiting for a session: opened on `slot` once one has room, or skipped once settled (cancelled). */
export interface StreamJob {
  readonly settled: boolean;
  open(slot: SessionSlot): void;
  /** Fails it before it was sent. */
  fail(error: unknown): void;
}

/** What a slot needs of its origin's sessions (http2-session.ts). */
export interface SlotOwner {
  readonly origin: string;
  /** 0: sessions are never closed for idleness. */
  readonly idleTimeoutMs: number;
  retire(slot: SessionSlot): void;
  start(job: StreamJob): void;
  slotFreed(): void;
  explain(error: unknown): unknown;
}

export class SessionSlot implements StreamHost {
  readonly session: ClientHttp2Session;
  readonly #owner: SlotOwner;
  /** Streams open on this session. */
  active = 0;
  /** Streams this session may carry at once. */
  limit: number;
  goawayLastId = -1;
  connected = false;
  /** True once the server's SETTINGS arrived (`limit` is the server's, not a guess). */
  settled = false;
  #opened = 0;

  constructor(session: ClientHttp2Session, owner: SlotOwner, limit: number) {
    this.session = session;
    this.#owner = owner;
    this.limit = limit;
  }

  get origin(): string {
    return this.#owner.origin;
  }

  streamOpened(): void {
    if (this.active++ === 0) {
      this.session.ref();
      // Busy: no idle timer (Node would refresh it on every frame).
      if (this.connected) this.session.setTimeout(0);
    }
    if (++this.#opened === MAX_STREAMS_PER_SESSION) {
      this.#owner.retire(this);
      this.session.close();
    }
  }

  streamClosed(): void {
    if (--this.active === 0 && !this.session.destroyed) {
      this.session.unref();
      this.idle();
    }
    this.#owner.slotFreed();
  }

  /** Arms the idle timeout, once connected with no stream open. */
  idle(): void {
    if (this.connected && this.#owner.idleTimeoutMs > 0) this.session.setTimeout(this.#owner.idleTimeoutMs);
  }

  /** The session began closing between the pick and the request (a GOAWAY just read): `job` goes elsewhere. */
  reroute(job: StreamJob): void {
    this.#owner.retire(this);
    this.#owner.start(job);
  }

  explain(error: unknown): unknown {
    // A protocol error before the server's SETTINGS: its first bytes were not HTTP/2 at all.
    if (!this.settled && (error as { code?: unknown } | null)?.code === "ERR_HTTP2_ERROR")
      return Object.assign(
        new Error(
          `${this.origin} did not answer the HTTP/2 connection preface (${(error as Error).message}): an HTTP/1.1-only server? Use undiciTransport() for it`,
          { cause: error },
        ),
        { code: "ERR_HTTP2_ERROR" },
      );
    return this.#owner.explain(error);
  }
}

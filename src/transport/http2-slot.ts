/**
 * One HTTP/2 session of an origin and its accounting: streams open, the server's stream limit,
 * the last stream id of a GOAWAY it received. It is the host of its streams' responses
 * (http2-response.ts) and tells its origin's sessions (http2-session.ts) when a slot frees up.
 * While a stream is open the session is ref'd, has no idle timer and is watched by its keep-alive
 * (http2-keepalive.ts); with none it is unref'd (it does not keep the process alive) and its idle
 * timer runs.
 */
import type { ClientHttp2Session } from "node:http2";
import type { Clock } from "../core/clock.js";
import { KeepAlive, type KeepAliveConfig, type KeepAlivePeer } from "./http2-keepalive.js";
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
  /** null: no PINGs. */
  readonly keepAlive: KeepAliveConfig | null;
  readonly clock: Clock;
  retire(slot: SessionSlot): void;
  /** Its keep-alive declared the session's peer gone (counted for the snapshot). */
  sessionDead(): void;
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
  readonly #keepAlive: KeepAlive | null;

  constructor(session: ClientHttp2Session, owner: SlotOwner, limit: number) {
    this.session = session;
    this.#owner = owner;
    this.limit = limit;
    const keepAlive = owner.keepAlive;
    this.#keepAlive = keepAlive === null ? null : new KeepAlive(owner.clock, keepAlive, pingPeer(this, owner));
  }

  get origin(): string {
    return this.#owner.origin;
  }

  streamOpened(): void {
    if (this.active++ === 0) {
      this.session.ref();
      // Busy: no idle timer (Node would refresh it on every frame); PINGs when it falls silent.
      if (this.connected) {
        this.session.setTimeout(0);
        this.#keepAlive?.watch();
      }
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

  /** Connected with streams open (they were placed before the handshake ended): the keep-alive watches. */
  busy(): void {
    this.#keepAlive?.watch();
  }

  /** The round trip of the newest PING answered on this session, ms; null before any (or without keep-alive). */
  get pingRttMs(): number | null {
    return this.#keepAlive?.lastRttMs ?? null;
  }

  /** The session closed: its keep-alive timer goes. */
  closed(): void {
    this.#keepAlive?.stop();
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

/**
 * The session as its keep-alive sees it. A PING left unanswered: the session takes no new stream
 * and is destroyed, its streams failing with `ERR_HTTP2_PING_TIMEOUT` — not a never-sent code (the
 * server may have processed them), so the classifier resends only idempotent requests.
 */
function pingPeer(slot: SessionSlot, owner: SlotOwner): KeepAlivePeer {
  const session = slot.session;
  return {
    get active() {
      return slot.active;
    },
    bytesRead: () => (session.destroyed ? 0 : session.socket.bytesRead),
    ping(acked: (rttMs: number) => void): boolean {
      // A session closing gracefully (GOAWAY, close()) is still PINGed: its streams finish on it.
      if (session.destroyed) return false;
      try {
        // An error is a PING cancelled by the session closing: its 'close' stops the keep-alive.
        return session.ping((error, rttMs) => {
          if (error === null) acked(rttMs);
        });
      } catch {
        return false;
      }
    },
    dead(timeoutMs: number): void {
      owner.sessionDead();
      owner.retire(slot);
      if (session.destroyed) return;
      session.destroy(
        Object.assign(
          new Error(
            `HTTP/2 session to ${owner.origin} did not answer a PING within ${timeoutMs} ms and sent nothing else: the peer is presumed gone (its streams may have been processed)`,
          ),
          { code: "ERR_HTTP2_PING_TIMEOUT" },
        ),
      );
    },
  };
}

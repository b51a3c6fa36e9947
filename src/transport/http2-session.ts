/**
 * The HTTP/2 sessions of one endpoint origin: usually one, carrying every stream.
 *
 * - `http://` is h2c with prior knowledge (the connection preface at once, no Upgrade dance);
 *   `https://` is TLS with ALPN `h2` (a server that does not pick h2 fails the handshake as
 *   `WEFT_ERR_TLS`, never sent).
 * - A stream goes to the first session with a free stream slot, slots being the server's
 *   SETTINGS_MAX_CONCURRENT_STREAMS (capped by `maxConcurrentStreams`). When every session is full
 *   another is opened, up to `maxSessions`; past that, streams wait in a FIFO queue here for a slot
 *   (bounded by their deadline; a cancelled one leaves without being sent). The queue is weft's,
 *   not nghttp2's: nghttp2 holds excess streams only on a session whose SETTINGS it has heard.
 * - Until a session hears the server's SETTINGS it carries as many streams as its origin's
 *   sessions last heard, or one when none has heard yet (the rest wait one round trip), and no
 *   other session is opened meanwhile. Guessing nghttp2's 100 instead made a server allowing fewer
 *   refuse the excess of a first burst (REFUSED_STREAM: resent, but failures for the breaker).
 * - A session that received GOAWAY, closed, failed, or was retired (a TLS rotation, an idle
 *   timeout) takes no new stream; the next stream opens a new one. Streams above the GOAWAY's last
 *   stream id fail as refused (http2-response.ts), so the retry layer resends them.
 * - A session with no stream open is unref'd (it does not keep the process alive) and closed after
 *   `idleTimeoutMs` without traffic.
 * - A session with streams open that has received nothing for `keepAlive.intervalMs` is PINGed;
 *   one that answers neither the PING nor anything else within `keepAlive.timeoutMs` is dead: it
 *   takes no new stream and is destroyed, its streams failing as possibly processed
 *   (http2-keepalive.ts).
 */
import { connect, type ClientSessionOptions, type Settings } from "node:http2";
import type { Clock } from "../core/clock.js";
import type { ConnectionsSnapshot } from "../core/transport.js";
import type { KeepAliveConfig } from "./http2-keepalive.js";
import { SessionSlot, type SlotOwner, type StreamJob } from "./http2-slot.js";
import { IdentityError, TlsError, tlsFailure, type TlsClient } from "./tls.js";

/** SETTINGS_MAX_CONCURRENT_STREAMS when the server's SETTINGS leave it out: unlimited (RFC 9113 §6.5.2). */
const UNLIMITED_STREAMS = 2 ** 31 - 1;
const NO_PUSH: Settings = { enablePush: false };
/** The key of TLS tickets from sessions made without weft's `tls` (Node's own trust store). */
const DEFAULT_CONTEXT = Symbol("node's default secure context");
/** A session's window before any WINDOW_UPDATE (RFC 9113 §6.9.2). */
const MIN_CONNECTION_WINDOW = 65_535;

export interface SessionConfig {
  readonly maxSessions: number;
  /** Cap on streams per session, below the server's limit; Infinity for none. */
  readonly maxConcurrentStreams: number;
  readonly connectTimeoutMs: number;
  /** 0: never closed for idleness. */
  readonly idleTimeoutMs: number;
  /** PINGs on silent sessions with streams open; null: none. */
  readonly keepAlive: KeepAliveConfig | null;
  /** Flow-control windows, bytes: each stream's (SETTINGS_INITIAL_WINDOW_SIZE) and the session's. */
  readonly streamWindow: number;
  readonly connectionWindow: number;
  /** The keep-alive's timers. */
  readonly clock: Clock;
  readonly tls: TlsClient | null;
}

/** The origin's sessions were closed (the endpoint left, the client closed): never sent, safe to resend elsewhere. */
function closedError(origin: string): Error {
  return Object.assign(new Error(`HTTP/2 sessions to ${origin} are closed`), { code: "UND_ERR_CLOSED" });
}

export class OriginSessions implements SlotOwner {
  readonly origin: string;
  /** `:authority` and `:scheme` of every stream. */
  readonly authority: string;
  readonly scheme: string;
  readonly #hostname: string;
  readonly #config: SessionConfig;
  readonly idleTimeoutMs: number;
  readonly keepAlive: KeepAliveConfig | null;
  readonly clock: Clock;
  /** Sessions that take new streams. */
  #open: SessionSlot[] = [];
  /** Every session not closed yet (open, draining after GOAWAY, retired). */
  readonly #live = new Set<SessionSlot>();
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS as last heard (a new session starts with it); 1 before any. */
  #serverLimit = 1;
  /** Streams waiting for a slot, first in first out (`#head` is the next). */
  #queue: StreamJob[] = [];
  #head = 0;
  #draining = false;
  #closed = false;
  /**
   * The TLS session the last handshake to this origin left (its ticket) and the secure context it
   * was made with: a new session resumes it (an abbreviated handshake) unless the material changed
   * since — a resumed session would carry the old client certificate.
   */
  #resumable: { readonly context: unknown; readonly ticket: Buffer } | null = null;
  /** Sessions that received a GOAWAY, and sessions dropped for an unanswered PING, since the start. */
  #goaways = 0;
  #deadSessions = 0;

  constructor(origin: string, config: SessionConfig) {
    const url = new URL(origin);
    this.origin = origin;
    this.authority = url.host;
    this.scheme = url.protocol === "https:" ? "https" : "http";
    this.#hostname = url.hostname;
    this.#config = config;
    this.idleTimeoutMs = config.idleTimeoutMs;
    this.keepAlive = config.keepAlive;
    this.clock = config.clock;
  }

  /** Opens `job`'s stream on a session with room now, or queues it until one has. */
  start(job: StreamJob): void {
    if (this.#closed) return job.fail(closedError(this.origin));
    const slot = this.#head === this.#queue.length ? this.#free() : null;
    if (slot === null) {
      this.#queue.push(job);
      this.#drain();
    } else job.open(slot);
  }

  /** A stream closed, a session heard SETTINGS or went away: waiting streams may go now. */
  slotFreed(): void {
    if (this.#head !== this.#queue.length) this.#drain();
  }

  /** Takes `slot` out of the sessions new streams go to (it finishes what it carries). */
  retire(slot: SessionSlot): void {
    const at = this.#open.indexOf(slot);
    if (at === -1) return;
    this.#open.splice(at, 1);
    this.slotFreed();
  }

  /** Retires every session and closes each gracefully (a TLS rotation: new streams get a new session). */
  retireAll(): void {
    const open = this.#open;
    this.#open = [];
    for (const slot of open) slot.session.close();
    this.slotFreed();
  }

  /**
   * Closes every session gracefully — streams in flight finish, no new ones start — and destroys
   * what is still open after `graceMs`.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#open = [];
    this.#failWaiting(closedError(this.origin));
    const slots = [...this.#live];
    if (slots.length === 0) return;
    const closed = Promise.all(
      slots.map(
        ({ session }) =>
          new Promise<void>((resolve) => {
            if (session.destroyed) return resolve();
            session.once("close", () => resolve());
            session.close();
          }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      // Real time: the grace real sockets get to finish on close() (the transport takes no Clock).
      // eslint-disable-next-line no-restricted-globals
      timer = setTimeout(() => resolve("late"), graceMs);
    });
    const result = await Promise.race([closed, late]);
    clearTimeout(timer);
    if (result === "late") {
      for (const { session } of slots) if (!session.destroyed) session.destroy();
      await closed;
    }
  }

  /** A failure before the response: a TLS handshake's as WEFT_ERR_IDENTITY / WEFT_ERR_TLS naming the origin; anything else as it is. */
  explain(error: unknown): unknown {
    if (this.scheme !== "https") return error;
    const failure = tlsFailure(error, this.origin);
    if (failure === undefined) return error;
    if (failure instanceof IdentityError) return new IdentityError(this.origin, failure.expected, failure.presented);
    return failure;
  }

  #failWaiting(error: unknown): void {
    const waiting = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    for (const job of waiting) if (!job.settled) job.fail(error);
  }

  /** A session with a free slot, or a new one when allowed; null when streams must wait. */
  #free(): SessionSlot | null {
    if (this.#closed) return null;
    const open = this.#open;
    let guessing = false;
    for (let i = 0; i < open.length; i++) {
      const slot = open[i] as SessionSlot;
      if (slot.active < slot.limit) return slot;
      if (!slot.settled) guessing = true;
    }
    // No second session on a guess: wait for the first one's SETTINGS.
    return open.length < this.#config.maxSessions && !guessing ? this.#connect() : null;
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const job = queue[this.#head] as StreamJob;
      let slot: SessionSlot | null = null;
      if (!job.settled && (slot = this.#free()) === null) break;
      queue[this.#head++] = undefined as unknown as StreamJob;
      // A reroute from here queues again (the guard above) and this loop takes it.
      if (slot !== null) job.open(slot);
    }
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    this.#draining = false;
  }

  /** The sessions to this origin now, for the client's snapshot. */
  connections(): ConnectionsSnapshot {
    let active = 0;
    let pingRttMs: number | null = null;
    for (const slot of this.#live) {
      active += slot.active;
      pingRttMs = slot.pingRttMs ?? pingRttMs;
    }
    return {
      open: this.#live.size,
      active,
      queued: this.#queue.length - this.#head,
      goaways: this.#goaways,
      deadSessions: this.#deadSessions,
      pingRttMs,
    };
  }

  /** A session's keep-alive found its peer gone (http2-slot.ts). */
  sessionDead(): void {
    this.#deadSessions++;
  }

  #connect(): SessionSlot {
    const config = this.#config;
    const secure = this.scheme === "https";
    // With `tls`: its secure context, identity check and SNI; Node adds ALPN "h2". No server push.
    const tls = secure && config.tls !== null ? config.tls.connectOptions(this.#hostname) : {};
    // One secure context per material version (tls.ts): a ticket is reused only with its own.
    const context = secure ? (tls.secureContext ?? DEFAULT_CONTEXT) : null;
    const resumable = this.#resumable;
    const options: ClientSessionOptions = {
      ...tls,
      ...(resumable !== null && resumable.context === context ? { session: resumable.ticket } : {}),
      settings: { ...NO_PUSH, initialWindowSize: config.streamWindow },
    };
    const session = connect(this.origin, options);
    // TLS 1.3 sends its tickets after the handshake; the newest one is what the next session offers.
    if (secure) session.socket.on("session", (ticket: Buffer) => (this.#resumable = { context, ticket }));
    const slot = new SessionSlot(session, this, Math.min(this.#serverLimit, config.maxConcurrentStreams));
    this.#open.push(slot);
    this.#live.add(slot);
    // Before 'connect': the connect timeout; after, while no stream is open: the idle timeout.
    session.setTimeout(config.connectTimeoutMs);
    session.on("timeout", () => {
      if (!slot.connected) {
        session.destroy(
          Object.assign(new Error(`HTTP/2 connect to ${this.origin} timed out after ${config.connectTimeoutMs} ms`), {
            code: "ERR_SOCKET_CONNECTION_TIMEOUT",
          }),
        );
      } else if (slot.active === 0) {
        this.retire(slot);
        session.close();
      }
    });
    session.once("connect", () => {
      slot.connected = true;
      session.setTimeout(0);
      // The session's own window (a WINDOW_UPDATE on stream 0): settings set only the streams'.
      if (config.connectionWindow > MIN_CONNECTION_WINDOW) session.setLocalWindowSize(config.connectionWindow);
      if (slot.active === 0) slot.idle();
      else slot.busy();
      if (secure && session.alpnProtocol !== "h2") {
        const cause = new Error(`ALPN chose ${JSON.stringify(session.alpnProtocol ?? "nothing")}, not h2`);
        session.destroy(new TlsError(this.origin, "ALPN_NOT_H2", cause));
      }
    });
    session.on("remoteSettings", (settings: Settings) => {
      this.#serverLimit = settings.maxConcurrentStreams ?? UNLIMITED_STREAMS;
      slot.limit = Math.min(this.#serverLimit, config.maxConcurrentStreams);
      slot.settled = true;
      this.slotFreed();
    });
    session.on("goaway", (_code: number, lastStreamId: number) => {
      if (slot.goawayLastId === -1) this.#goaways++;
      // Node closes the session itself (gracefully for NO_ERROR); new streams must go elsewhere.
      slot.goawayLastId = slot.goawayLastId === -1 ? lastStreamId : Math.min(slot.goawayLastId, lastStreamId);
      this.retire(slot);
    });
    // Its streams get the error (or a cancel caused by it); the streams waiting for a session too
    // when it never connected (they would meet the same refusal, and reconnecting for each is a loop).
    let failure: unknown = undefined;
    session.on("error", (error: unknown) => (failure = error));
    session.once("close", () => {
      this.#live.delete(slot);
      slot.closed();
      const explained = failure === undefined ? undefined : this.explain(failure);
      // Counted once per session (identity mismatches count themselves, in the handshake).
      if (explained instanceof TlsError) config.tls?.count(explained);
      if (!slot.connected) this.#failWaiting(explained ?? closedError(this.origin));
      this.retire(slot);
    });
    return slot;
  }
}

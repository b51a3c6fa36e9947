/**
 * HTTP/2 keep-alive: PING frames that find a session whose peer stopped answering (a frozen
 * process, a network path that dropped without a FIN or RST) before the calls riding it each run
 * into their own deadline, and before new calls are multiplexed onto it. gRPC's client keepalive
 * (A8), Envoy's `connection_keepalive` and hyper's `http2_keep_alive_*` do the same.
 *
 * When a PING goes out: only while the session has streams open, and only once nothing at all was
 * received on it for a whole `intervalMs` (any frame counts: the socket's bytes read, sampled once
 * per interval, so a PING follows between one and two intervals of silence). A busy session that
 * keeps receiving frames is never PINGed; an idle one (no stream open) neither, so PINGs never
 * keep a session alive against the idle timeout (gRPC's `permit_without_calls` default, hyper's
 * `while_idle: false`). A peer that polices PINGs (grpc-go and grpc-java servers allow one per
 * 5 minutes by default) therefore only sees them on a quiet session with calls waiting.
 *
 * The verdict: no ACK within `timeoutMs` and nothing else received either — frames still arriving
 * (an ACK queued behind large DATA frames) extend the wait, as Envoy does. Before it, one more turn
 * of the event loop, so an ACK sitting unread in the socket after a stall of this process (a long
 * GC, a synchronous task) is read first and does not condemn a healthy session.
 *
 * Pure bookkeeping over an injected `Clock` and a `KeepAlivePeer` (the session, http2-slot.ts):
 * tested without a socket or a real timer.
 */
import type { Clock, TimerHandle } from "../core/clock.js";

export interface KeepAliveConfig {
  /** Silence (nothing received) on a session with streams open before a PING, ms. */
  readonly intervalMs: number;
  /** Time for the PING's ACK (or any other frame) before the session is declared dead, ms. */
  readonly timeoutMs: number;
}

/** What the keep-alive watches: one session. */
export interface KeepAlivePeer {
  /** Streams open now: PINGs only while there are some. */
  readonly active: number;
  /** Bytes received on the connection so far: every frame moves it. */
  bytesRead(): number;
  /** Sends a PING; `acked` gets its round trip when the ACK arrives. False when it could not be sent (closing). */
  ping(acked: (rttMs: number) => void): boolean;
  /** The PING went unanswered for `timeoutMs` and nothing else arrived: the peer is gone. */
  dead(timeoutMs: number): void;
}

/** Not watching: no stream open (or stopped); the next stream starts it again. */
const IDLE = 0;
/** Sampling the bytes read once per interval. */
const WATCHING = 1;
/** A PING is out; the timer is its timeout. */
const PINGING = 2;
/** The timeout passed with no ACK: one more event-loop turn (to read what is pending) before the verdict. */
const CONFIRMING = 3;
/** Declared dead, or the session closed: never restarts. */
const STOPPED = 4;

export class KeepAlive {
  readonly #clock: Clock;
  readonly #config: KeepAliveConfig;
  readonly #peer: KeepAlivePeer;
  #state = IDLE;
  #timer: TimerHandle | null = null;
  /** Bytes read at the last sample. */
  #seen = 0;
  /** Tells the ACK of the PING outstanding from a late one of a PING already given up on. */
  #pingId = 0;
  /**
   * PINGs sent, and the round trip of the last one acknowledged (ms; null before any): kept for a
   * per-session snapshot, which the transport does not expose yet.
   */
  pingsSent = 0;
  lastRttMs: number | null = null;

  constructor(clock: Clock, config: KeepAliveConfig, peer: KeepAlivePeer) {
    this.#clock = clock;
    this.#config = config;
    this.#peer = peer;
  }

  /** True while a PING waits for its ACK. */
  get pinging(): boolean {
    return this.#state === PINGING || this.#state === CONFIRMING;
  }

  /** A stream opened on the connected session: watch it, unless already watching. */
  watch(): void {
    if (this.#state !== IDLE) return;
    this.#state = WATCHING;
    this.#seen = this.#peer.bytesRead();
    this.#schedule(this.#config.intervalMs);
  }

  /** The session closed (or was declared dead): no more timers. */
  stop(): void {
    this.#state = STOPPED;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #schedule(ms: number): void {
    this.#timer = this.#clock.setTimer(this.#tick, ms);
  }

  readonly #tick = (): void => {
    this.#timer = null;
    const peer = this.#peer;
    const read = peer.bytesRead();
    const heard = read !== this.#seen;
    this.#seen = read;
    switch (this.#state) {
      case WATCHING:
        if (peer.active === 0) this.#state = IDLE;
        else if (heard) this.#schedule(this.#config.intervalMs);
        else this.#ping();
        return;
      case PINGING:
      case CONFIRMING:
        if (heard) {
          // Frames arrive, so the peer is alive; its ACK may be queued behind them.
          this.#state = PINGING;
          this.#schedule(this.#config.timeoutMs);
        } else if (this.#state === PINGING) {
          this.#state = CONFIRMING;
          this.#schedule(0);
        } else {
          this.stop();
          peer.dead(this.#config.timeoutMs);
        }
        return;
      default:
        return;
    }
  };

  #ping(): void {
    const id = ++this.#pingId;
    const sent = this.#peer.ping((rttMs) => this.#acked(id, rttMs));
    if (!sent) {
      // The session is closing: its 'close' stops this for good.
      this.#state = IDLE;
      return;
    }
    this.pingsSent++;
    this.#state = PINGING;
    this.#schedule(this.#config.timeoutMs);
  }

  #acked(id: number, rttMs: number): void {
    if (id !== this.#pingId || !this.pinging) return;
    this.lastRttMs = rttMs;
    this.#timer?.cancel();
    this.#timer = null;
    if (this.#peer.active === 0) {
      this.#state = IDLE;
      return;
    }
    this.#state = WATCHING;
    this.#seen = this.#peer.bytesRead();
    this.#schedule(this.#config.intervalMs);
  }
}

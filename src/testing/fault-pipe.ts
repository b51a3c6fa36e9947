/**
 * The per-connection half of `faultProxy`: two pumps, client → server ("up") and server → client
 * ("down"), that queue each chunk with the time it may leave. One queue per direction keeps the
 * byte order whatever the fault does (delay, throttle, hold, cut), and one timer per pump — armed
 * for the head of the queue only — is all the clock work a connection costs.
 *
 * `planChunk` decides when bytes may leave and is pure (numbers in, numbers out); `Pump` and
 * `Connection` only move bytes, count them, and clear their timers when they stop.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Random } from "../core/clock.js";
import type { Fault } from "./fault-proxy.js";

export type Direction = "up" | "down";

/** Bytes a pump queues before it pauses its source, so TCP backpressure reaches the sender. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** `slowBody` cuts chunks so it sends ~20 slices a second: a steady trickle, not a burst a second. */
const SLICES_PER_SECOND = 20;
const MAX_SLICE_BYTES = 64 * 1024;
/**
 * `reset` + `afterBytes` waits this long between writing the last allowed byte and the RST. An RST
 * makes the receiving kernel drop bytes the application has not read yet, so without the pause a
 * client would often lose the bytes it was promised (or see a plain EOF): the pause lets it read.
 */
const RESET_GRACE_MS = 20;
/** setTimeout's ceiling; a longer wait (a very low bytesPerSecond) re-arms when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

export interface Slice {
  readonly data: Buffer;
  /** `performance.now()` time before which the slice must not be written. */
  readonly dueAt: number;
}

export interface PlanState {
  /** `slowBody`: the earliest time the next slice may leave without exceeding the rate. */
  readonly nextFreeAt: number;
}

export const INITIAL_PLAN: PlanState = Object.freeze({ nextFreeAt: -Infinity });

/**
 * When may the bytes of `chunk`, read at `nowMs`, leave in `direction` under `fault`?
 * Latency: `latencyMs + jitterMs × random()` after arrival. slowBody (down only): slices of
 * ~bytesPerSecond/20 bytes spaced so the rate never exceeds bytesPerSecond; an idle connection
 * sends its first slice at once. Anything else: now. The caller's queue is FIFO, so a chunk
 * never overtakes an earlier one (with jitter, some chunks wait a little longer than drawn).
 */
export function planChunk(
  fault: Fault | null,
  direction: Direction,
  chunk: Buffer,
  nowMs: number,
  state: PlanState,
  random: Random,
): { slices: Slice[]; state: PlanState } {
  if (fault?.kind === "latency" && appliesTo(fault.direction ?? "down", direction)) {
    const dueAt = nowMs + fault.latencyMs + (fault.jitterMs ?? 0) * random();
    return { slices: [{ data: chunk, dueAt }], state };
  }
  if (fault?.kind === "slowBody" && direction === "down") {
    const bytesPerSecond = fault.bytesPerSecond;
    const sliceBytes = Math.min(MAX_SLICE_BYTES, Math.max(1, Math.floor(bytesPerSecond / SLICES_PER_SECOND)));
    const slices: Slice[] = [];
    let nextFreeAt = state.nextFreeAt;
    for (let offset = 0; offset < chunk.length; offset += sliceBytes) {
      const data = chunk.subarray(offset, offset + sliceBytes);
      const dueAt = Math.max(nowMs, nextFreeAt);
      slices.push({ data, dueAt });
      nextFreeAt = dueAt + (data.length * 1000) / bytesPerSecond;
    }
    return { slices, state: { nextFreeAt } };
  }
  return { slices: [{ data: chunk, dueAt: nowMs }], state };
}

function appliesTo(faultDirection: "up" | "down" | "both", direction: Direction): boolean {
  return faultDirection === "both" || faultDirection === direction;
}

/** "full": written, but the sink asked to wait for 'drain'; "stop": the connection was cut. */
type WriteResult = "ok" | "full" | "stop";

interface PumpHooks {
  readonly direction: Direction;
  fault(): Fault | null;
  readonly random: Random;
  source(): Socket | null;
  sink(): Socket | null;
  write(data: Buffer): WriteResult;
}

/** One direction of a connection: a FIFO of slices, released when due and not frozen. */
class Pump {
  private queue: Slice[] = [];
  private queuedBytes = 0;
  private plan: PlanState = INITIAL_PLAN;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private sourceEnded = false;
  private sinkEnded = false;
  private waitingForDrain = false;
  private sourcePaused = false;
  private stopped = false;

  constructor(private readonly hooks: PumpHooks) {}

  push(chunk: Buffer): void {
    if (this.stopped) return;
    const { direction, random } = this.hooks;
    const planned = planChunk(this.hooks.fault(), direction, chunk, performance.now(), this.plan, random);
    this.plan = planned.state;
    for (const slice of planned.slices) this.queue.push(slice);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes >= HIGH_WATER_BYTES && !this.sourcePaused) {
      this.sourcePaused = true;
      this.hooks.source()?.pause();
    }
    this.flush();
  }

  /** The source sent FIN: pass it on once every queued byte has left. */
  end(): void {
    this.sourceEnded = true;
    this.flush();
  }

  /** Writes every due slice; re-arms the one timer for the next. Call again after a fault change. */
  flush(): void {
    this.clearTimer();
    // A blackhole freezes both directions: bytes stay queued (as in a stopped process's socket
    // buffers) and leave, in order, when the fault is lifted.
    if (this.stopped || this.waitingForDrain || this.hooks.fault()?.kind === "blackhole") return;
    const sink = this.hooks.sink();
    if (sink === null) return;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      const now = performance.now();
      if (next.dueAt > now) {
        // Timers may fire a little early (ms granularity); flush() checks again and re-arms.
        this.timer = setTimeout(
          () => {
            this.timer = null;
            this.flush();
          },
          Math.min(MAX_TIMER_MS, Math.ceil(next.dueAt - now)),
        );
        break;
      }
      this.queue.shift();
      this.queuedBytes -= next.data.length;
      const result = this.hooks.write(next.data);
      if (result === "stop") return;
      if (result === "full") {
        this.waitingForDrain = true;
        sink.once("drain", () => {
          this.waitingForDrain = false;
          this.flush();
        });
        break;
      }
    }
    if (this.sourcePaused && this.queuedBytes < HIGH_WATER_BYTES / 2) {
      this.sourcePaused = false;
      this.hooks.source()?.resume();
    }
    if (this.queue.length === 0 && this.sourceEnded && !this.sinkEnded) {
      this.sinkEnded = true;
      sink.end();
    }
  }

  /** Drops what is queued and clears the timer; the pump does nothing afterwards. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.queue = [];
    this.queuedBytes = 0;
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The counters `faultProxy().stats` reports; connections add to them. */
export interface MutableStats {
  connections: number;
  activeConnections: number;
  bytesUp: number;
  bytesDown: number;
  resets: number;
}

export interface ConnectionEnv {
  readonly target: { readonly host: string; readonly port: number };
  /** The proxy's current fault, read on every chunk. */
  fault(): Fault | null;
  readonly random: Random;
  readonly stats: MutableStats;
  /** Registers a socket so `close()` can wait for it to be gone. */
  track(socket: Socket): void;
  /** Called once both sockets of `connection` are closed. */
  release(connection: Connection): void;
}

/**
 * One accepted client and its upstream socket. The upstream is dialled on accept, or — for a
 * connection accepted under `blackhole` — when the blackhole is lifted, with the held bytes.
 */
export class Connection {
  private upstream: Socket | null = null;
  private readonly up: Pump;
  private readonly down: Pump;
  /** Bytes written to the client, and the count when the current fault was applied. */
  private bytesDown = 0;
  private bytesDownAtFault = 0;
  private cut = false;
  private resetTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly client: Socket,
    private readonly env: ConnectionEnv,
  ) {
    const common = { fault: env.fault, random: env.random };
    this.up = new Pump({
      ...common,
      direction: "up",
      source: () => this.client,
      sink: () => this.upstream,
      write: (d) => this.writeUp(d),
    });
    this.down = new Pump({
      ...common,
      direction: "down",
      source: () => this.upstream,
      sink: () => this.client,
      write: (d) => this.writeDown(d),
    });
    client.setNoDelay(true);
    client.on("data", (chunk: Buffer) => this.up.push(chunk));
    client.on("end", () => this.up.end());
    // A client that resets its side gets its reset passed on to the server.
    client.on("error", (err: NodeJS.ErrnoException) => this.destroy(false, err.code === "ECONNRESET"));
    // A client gone after the server finished sending: let queued upload bytes reach the server
    // (the upstream closes itself once both its sides are done); otherwise drop the server.
    client.on("close", () => {
      this.down.stop();
      if (this.upstream?.readableEnded !== true) this.destroy(false);
      this.releaseWhenClosed();
    });
    if (env.fault()?.kind !== "blackhole") this.dial();
  }

  /** Re-reads the proxy's fault after a change (see the table on `Fault`); the proxy handles `refuse`. */
  applyFault(fault: Fault | null): void {
    if (this.cut) return;
    if (fault?.kind === "reset" && fault.afterBytes === undefined) return this.destroy(true);
    this.bytesDownAtFault = this.bytesDown;
    if (fault?.kind !== "blackhole" && this.upstream === null) this.dial();
    this.up.flush();
    this.down.flush();
  }

  /** Closes both sockets and clears the timers; `reset` sends the client a TCP RST. */
  destroy(reset: boolean, resetUpstream = false): void {
    if (this.cut) return;
    this.cut = true;
    if (this.resetTimer !== null) clearTimeout(this.resetTimer);
    this.up.stop();
    this.down.stop();
    if (reset && !this.client.destroyed) {
      this.env.stats.resets++;
      this.client.resetAndDestroy();
    } else {
      this.client.destroy();
    }
    if (resetUpstream) this.upstream?.resetAndDestroy();
    else this.upstream?.destroy();
  }

  private dial(): void {
    const upstream = connect({ host: this.env.target.host, port: this.env.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    this.env.track(upstream);
    upstream.setNoDelay(true);
    upstream.on("data", (chunk: Buffer) => this.down.push(chunk));
    upstream.on("end", () => this.down.end());
    // The server refused or reset us: the client sees a reset (a proxy cannot refuse after accept).
    upstream.on("error", () => this.destroy(true));
    upstream.on("close", () => {
      this.up.stop();
      this.releaseWhenClosed();
    });
    this.up.flush();
  }

  private releaseWhenClosed(): void {
    if (this.client.closed && (this.upstream === null || this.upstream.closed)) this.env.release(this);
  }

  private writeUp(data: Buffer): WriteResult {
    this.env.stats.bytesUp += data.length;
    return this.upstream!.write(data) ? "ok" : "full";
  }

  private writeDown(data: Buffer): WriteResult {
    const fault = this.env.fault();
    if (fault?.kind === "reset" && fault.afterBytes !== undefined) {
      const allowedBytes = fault.afterBytes - (this.bytesDown - this.bytesDownAtFault);
      if (data.length >= allowedBytes) {
        // Write exactly the allowed bytes, then reset once they are in the kernel's hands.
        this.up.stop();
        this.down.stop();
        const head = data.subarray(0, Math.max(0, allowedBytes));
        if (head.length === 0) {
          this.destroy(true);
        } else {
          this.countDown(head.length);
          this.client.write(head, () => {
            if (!this.cut) this.resetTimer = setTimeout(() => this.destroy(true), RESET_GRACE_MS);
          });
        }
        return "stop";
      }
    }
    this.countDown(data.length);
    return this.client.write(data) ? "ok" : "full";
  }

  private countDown(bytes: number): void {
    this.bytesDown += bytes;
    this.env.stats.bytesDown += bytes;
  }
}

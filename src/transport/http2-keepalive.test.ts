import { describe, expect, it } from "vitest";
import { fakeClock } from "../testing/fake-clock.js";
import { KeepAlive, type KeepAlivePeer } from "./http2-keepalive.js";

/** A session as the keep-alive sees it: bytes received, streams open, PINGs sent and their ACKs. */
function peer() {
  const state = {
    active: 1,
    bytes: 0,
    pings: [] as ((rttMs: number) => void)[],
    dead: [] as number[],
    canPing: true,
  };
  const view: KeepAlivePeer = {
    get active() {
      return state.active;
    },
    bytesRead: () => state.bytes,
    ping(acked) {
      if (!state.canPing) return false;
      state.pings.push(acked);
      return true;
    },
    dead: (timeoutMs) => void state.dead.push(timeoutMs),
  };
  return { state, view };
}

const CONFIG = { intervalMs: 100, timeoutMs: 50 };

describe("KeepAlive", () => {
  it("PINGs a session with a stream open once nothing was received for an interval, and not before", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    new KeepAlive(clock, CONFIG, view).watch();
    clock.advance(99);
    expect(state.pings).toHaveLength(0);
    clock.advance(1);
    expect(state.pings).toHaveLength(1);
  });

  it("never PINGs a session that keeps receiving frames", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    new KeepAlive(clock, CONFIG, view).watch();
    for (let t = 0; t < 2_000; t += 10) {
      state.bytes += 9;
      clock.advance(10);
    }
    expect(state.pings).toHaveLength(0);
    expect(state.dead).toHaveLength(0);
  });

  it("never PINGs a session with no stream open, and stops its timer there", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    const keepAlive = new KeepAlive(clock, CONFIG, view);
    keepAlive.watch();
    state.active = 0;
    clock.advance(10_000);
    expect(state.pings).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
    // The next stream starts it again, and a full interval of silence is measured from there.
    state.active = 1;
    keepAlive.watch();
    clock.advance(99);
    expect(state.pings).toHaveLength(0);
    clock.advance(1);
    expect(state.pings).toHaveLength(1);
  });

  it("keeps a session whose peer answers, PINGing again after each quiet interval", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    const keepAlive = new KeepAlive(clock, CONFIG, view);
    keepAlive.watch();
    for (let round = 1; round <= 5; round++) {
      clock.advance(100);
      expect(state.pings).toHaveLength(round);
      clock.advance(10);
      state.bytes += 17; // the ACK
      state.pings[round - 1]?.(10);
      expect(keepAlive.lastRttMs).toBe(10);
    }
    expect(keepAlive.pingsSent).toBe(5);
    expect(state.dead).toHaveLength(0);
  });

  it("declares a peer dead when neither the ACK nor any other frame arrives within timeoutMs", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    new KeepAlive(clock, CONFIG, view).watch();
    clock.advance(100);
    expect(state.pings).toHaveLength(1);
    clock.advance(49);
    expect(state.dead).toHaveLength(0);
    // The timeout, and the verdict one event-loop turn later (a 0 ms timer).
    clock.advance(1);
    expect(state.dead).toEqual([50]);
    expect(clock.pendingTimers).toBe(0);
    // A late ACK changes nothing.
    state.pings[0]?.(500);
    clock.advance(1_000);
    expect(state.pings).toHaveLength(1);
  });

  it("waits on while other frames arrive (an ACK queued behind DATA)", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    new KeepAlive(clock, CONFIG, view).watch();
    clock.advance(100);
    for (let i = 0; i < 10; i++) {
      state.bytes += 16_384;
      clock.advance(50);
    }
    expect(state.dead).toHaveLength(0);
    expect(state.pings).toHaveLength(1);
    clock.advance(50);
    expect(state.dead).toEqual([50]);
  });

  it("reads what is pending before the verdict: an ACK unread when the timeout fires (this process stalled) spares the session", () => {
    // Timers run one at a time, so the ACK can arrive between the timeout and the verdict.
    const due: { fn: () => void; ms: number }[] = [];
    const clock = {
      now: () => 0,
      wallNow: () => 0,
      setTimer(fn: () => void, ms: number) {
        const timer = { fn, ms };
        due.push(timer);
        return {
          cancel: () => {
            const at = due.indexOf(timer);
            if (at !== -1) due.splice(at, 1);
          },
        };
      },
    };
    const { state, view } = peer();
    new KeepAlive(clock, CONFIG, view).watch();
    const runNext = (): number => {
      const timer = due.shift() as { fn: () => void; ms: number };
      timer.fn();
      return timer.ms;
    };
    expect(runNext()).toBe(100);
    expect(state.pings).toHaveLength(1);
    expect(runNext()).toBe(50);
    expect(due.map((t) => t.ms)).toEqual([0]);
    state.bytes += 17;
    state.pings[0]?.(700);
    expect(due.map((t) => t.ms)).toEqual([100]);
    expect(state.dead).toHaveLength(0);
  });

  it("stop() clears its timers, and a stopped keep-alive never starts again", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    const keepAlive = new KeepAlive(clock, CONFIG, view);
    keepAlive.watch();
    clock.advance(100);
    expect(clock.pendingTimers).toBe(1);
    keepAlive.stop();
    expect(clock.pendingTimers).toBe(0);
    keepAlive.watch();
    clock.advance(1_000);
    expect(state.pings).toHaveLength(1);
    expect(state.dead).toHaveLength(0);
  });

  it("goes quiet when the session cannot send a PING (closing), until the next stream", () => {
    const clock = fakeClock();
    const { state, view } = peer();
    state.canPing = false;
    const keepAlive = new KeepAlive(clock, CONFIG, view);
    keepAlive.watch();
    clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
    expect(keepAlive.pingsSent).toBe(0);
  });
});

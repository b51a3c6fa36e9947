/**
 * `fakeClock()` — a `Clock` that moves only when told to, so a 30 s ejection or a 10 s EWMA
 * decay is tested in a millisecond, the same way every run.
 */
import type { Clock, TimerHandle } from "../core/clock.js";

interface FakeTimer {
  readonly at: number;
  readonly seq: number;
  fn: (() => void) | null;
}

export interface FakeClock extends Clock {
  /** Moves time forward by `ms`, firing due timers in order (synchronously). */
  advance(ms: number): void;
  /**
   * Moves time forward by `ms`, letting promise callbacks run between timers — use this when a
   * timer's effect is awaited by code that then schedules the next timer.
   */
  advanceAsync(ms: number): Promise<void>;
  /** Timers scheduled and not yet fired or cancelled. */
  readonly pendingTimers: number;
}

/**
 * @param startMs the initial monotonic time (default 0); wall time starts at `wallStartMs`.
 * @example const clock = fakeClock(); createClient({ …, clock }); clock.advance(1000);
 */
export function fakeClock(startMs = 0, wallStartMs = Date.UTC(2026, 0, 1)): FakeClock {
  let now = startMs;
  let seq = 0;
  let timers: FakeTimer[] = [];

  const nextDue = (until: number): FakeTimer | undefined => {
    let best: FakeTimer | undefined;
    for (const t of timers) {
      if (t.fn === null || t.at > until) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };
  const fire = (timer: FakeTimer): void => {
    const fn = timer.fn;
    timer.fn = null;
    timers = timers.filter((t) => t.fn !== null);
    now = Math.max(now, timer.at);
    fn?.();
  };

  return {
    now: () => now,
    wallNow: () => wallStartMs + (now - startMs),
    setTimer(fn: () => void, ms: number): TimerHandle {
      const timer: FakeTimer = { at: now + Math.max(0, ms), seq: seq++, fn };
      timers.push(timer);
      return {
        cancel: () => {
          timer.fn = null;
        },
      };
    },
    advance(ms: number): void {
      const until = now + ms;
      for (let t = nextDue(until); t !== undefined; t = nextDue(until)) fire(t);
      now = until;
    },
    async advanceAsync(ms: number): Promise<void> {
      const until = now + ms;
      await flush();
      for (let t = nextDue(until); t !== undefined; t = nextDue(until)) {
        fire(t);
        await flush();
      }
      now = until;
      await flush();
    },
    get pendingTimers(): number {
      return timers.filter((t) => t.fn !== null).length;
    },
  };
}

/** Lets queued promise callbacks (and their follow-ups) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * The shared deadline timer. Every deadline in the process (total and per-try timeouts, backoff
 * ends) goes into one structure per clock, served by a single unref'd timer armed for the
 * earliest deadline — not one `setTimeout` per call (~1 µs each, FACTS.md) and never an
 * `AbortSignal.timeout` (~13 µs, and collectable before it fires on Node 20).
 *
 * Deadlines are grouped into 1 ms buckets (intrusive linked lists); a min-heap of bucket ticks finds
 * the next one to fire. Cancelling unlinks the entry in O(1); an emptied bucket stays until its
 * tick, so calls one after another reuse their millisecond's bucket and its one heap entry.
 * The timer is unref'd: it never keeps a process alive, and once it fires with nothing left to do
 * it is not re-armed.
 */
import type { Clock, TimerHandle } from "./clock.js";

export interface Scheduled {
  /** Removes the deadline; harmless after it fired. */
  cancel(): void;
}

class Entry implements Scheduled {
  // Intrusive list links: removing an entry from its bucket is two pointer writes, no hashing.
  prev: Entry | null = null;
  next: Entry | null = null;
  constructor(
    readonly wheel: DeadlineWheel,
    readonly bucket: Bucket,
    public fire: (() => void) | null,
  ) {}
  cancel(): void {
    if (this.fire === null) return;
    this.fire = null;
    this.wheel.remove(this);
  }
}

/** The deadlines due in one millisecond: a doubly linked list of entries. */
class Bucket {
  head: Entry | null = null;
  size = 0;
  constructor(readonly tick: number) {}
}

export class DeadlineWheel {
  readonly #clock: Clock;
  readonly #buckets = new Map<number, Bucket>();
  readonly #heap: number[] = [];
  #armedTick = Infinity;
  #timer: TimerHandle | null = null;
  #size = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of pending deadlines (for tests and snapshots). */
  get size(): number {
    return this.#size;
  }

  /** Millisecond ticks the heap holds, fired or not (for tests: one per millisecond in use, never one per call). */
  get ticks(): number {
    return this.#heap.length;
  }

  /** Calls `fire` once at (or just after) the absolute time `at` on this wheel's clock. */
  schedule(at: number, fire: () => void): Scheduled {
    const tick = Math.ceil(at);
    let bucket = this.#buckets.get(tick);
    if (bucket === undefined) {
      bucket = new Bucket(tick);
      this.#buckets.set(tick, bucket);
      heapPush(this.#heap, tick);
    }
    const entry = new Entry(this, bucket, fire);
    const head = bucket.head;
    entry.next = head;
    if (head !== null) head.prev = entry;
    bucket.head = entry;
    bucket.size++;
    this.#size++;
    if (tick < this.#armedTick) this.#arm(tick);
    return entry;
  }

  remove(entry: Entry): void {
    const bucket = entry.bucket;
    if (entry.prev !== null) entry.prev.next = entry.next;
    else if (bucket.head === entry) bucket.head = entry.next;
    else return; // already fired
    if (entry.next !== null) entry.next.prev = entry.prev;
    entry.prev = null;
    entry.next = null;
    bucket.size--;
    this.#size--;
    // An emptied bucket stays until its tick comes (at most one per millisecond of the deadline
    // range), and the timer stays armed: the next call due in the same millisecond reuses it.
    // Deleting it made every sequential call create a bucket and push its tick onto the heap
    // again — a duplicate per call, kept until the tick came (15 s later by default).
  }

  #arm(tick: number): void {
    this.#timer?.cancel();
    this.#armedTick = tick;
    this.#timer = this.#clock.setTimer(() => this.#onTimer(), tick - this.#clock.now());
  }

  #onTimer(): void {
    this.#timer = null;
    this.#armedTick = Infinity;
    // Node's timers fire on whole milliseconds of the loop's cached time, often a fraction of a
    // millisecond before `performance.now()` reaches the tick; re-arming for that remainder would
    // round up to one more millisecond. A bucket within 1 ms of now is due (1 ms resolution).
    const now = this.#clock.now() + 1;
    const heap = this.#heap;
    while (heap.length > 0 && (heap[0] as number) < now) {
      const tick = heapPop(heap);
      const bucket = this.#buckets.get(tick);
      if (bucket === undefined) continue;
      this.#buckets.delete(tick);
      let entry = bucket.head;
      bucket.head = null;
      while (entry !== null) {
        const following = entry.next;
        entry.prev = null;
        entry.next = null;
        const fire = entry.fire;
        entry.fire = null;
        this.#size--;
        if (fire !== null) fire();
        entry = following;
      }
      bucket.size = 0;
    }
    while (heap.length > 0 && !this.#buckets.has(heap[0] as number)) heapPop(heap);
    if (heap.length > 0) this.#arm(heap[0] as number);
  }
}

const wheels = new WeakMap<Clock, DeadlineWheel>();

/** The one wheel for a clock (the system clock's is shared by every client in the process). */
export function wheelFor(clock: Clock): DeadlineWheel {
  let wheel = wheels.get(clock);
  if (wheel === undefined) {
    wheel = new DeadlineWheel(clock);
    wheels.set(clock, wheel);
  }
  return wheel;
}

function heapPush(heap: number[], value: number): void {
  let i = heap.push(value) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as number) <= value) break;
    heap[i] = heap[parent] as number;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): number {
  const top = heap[0] as number;
  const last = heap.pop() as number;
  if (heap.length > 0) {
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && (heap[r] as number) < (heap[l] as number) ? r : l;
      if ((heap[child] as number) >= last) break;
      heap[i] = heap[child] as number;
      i = child;
    }
    heap[i] = last;
  }
  return top;
}

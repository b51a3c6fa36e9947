/**
 * The simulated downstream resource of the overload bench (and of test/integration/overload.test.ts):
 * `slots` parallel slots, each busy for `serviceMs` per request, and a FIFO queue beyond them —
 * a database with 4 connections and 10 ms queries, say. Its capacity is fixed and known,
 * `slots / serviceMs` requests per ms (4 × 10 ms = 400 req/s), and a server that admits more than
 * `slots` requests at once makes them wait here: that queue is what makes latency grow under
 * overload.
 *
 * Time in the resource is virtual, so the capacity does not depend on timer precision: a slot
 * that frees at virtual time v starts its next request at max(v, the request's arrival), and the
 * request's timer is set for that start + serviceMs. A timer that fires late (Node's timers, a
 * busy event loop) delays that one answer, never the slots' schedule, so over any stretch the
 * resource does exactly `slots / serviceMs` of work. The wait it reports (`waitMs`) is the queue
 * wait in that schedule: start − arrival.
 *
 * `use(skip)`: `skip` is asked when the request reaches the head of the queue, just before its
 * work would start; true drops it without spending slot time (the caller has gone away: a server
 * that knows can save the work). Without `skip`, every request is worked, wanted or not — a naive
 * server's behaviour.
 */

export interface ResourceUse {
  /** Time spent waiting in the queue, ms (virtual schedule: start − arrival). */
  readonly waitMs: number;
  /** True when `skip` said so at the head of the queue: no work was done. */
  readonly skipped: boolean;
}

interface Job {
  readonly arrivedAt: number;
  readonly skip: (() => boolean) | undefined;
  readonly resolve: (use: ResourceUse) => void;
}

export class SimulatedResource {
  readonly slots: number;
  readonly serviceMs: number;
  readonly #now: () => number;
  #busy = 0;
  /** FIFO: `#queue[#head]` is the oldest; compacted as the head advances. */
  #queue: Job[] = [];
  #head = 0;
  /** Requests worked (slot time spent) and requests dropped by `skip`, since the last reset. */
  worked = 0;
  skipped = 0;

  constructor(slots: number, serviceMs: number, now: () => number = () => performance.now()) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a whole number ≥ 1, got ${slots}`);
    if (!(serviceMs > 0)) throw new RangeError(`serviceMs must be > 0, got ${serviceMs}`);
    this.slots = slots;
    this.serviceMs = serviceMs;
    this.#now = now;
  }

  /** Requests per second the resource completes when it is never idle. */
  get capacityPerSecond(): number {
    return (this.slots * 1000) / this.serviceMs;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Slots working (or whose answer is about to be delivered) now. */
  get busy(): number {
    return this.#busy;
  }

  /** Waits for a slot (FIFO), holds it for `serviceMs`, resolves when the work is done. */
  use(skip?: () => boolean): Promise<ResourceUse> {
    return new Promise<ResourceUse>((resolve) => {
      const job: Job = { arrivedAt: this.#now(), skip, resolve };
      if (this.#busy < this.slots) {
        this.#busy++;
        this.#start(job, job.arrivedAt);
      } else this.#queue.push(job);
    });
  }

  resetCounts(): void {
    this.worked = 0;
    this.skipped = 0;
  }

  #start(job: Job, startAt: number): void {
    const endAt = startAt + this.serviceMs;
    this.worked++;
    setTimeout(
      () => {
        job.resolve({ waitMs: startAt - job.arrivedAt, skipped: false });
        this.#next(endAt);
      },
      Math.max(0, endAt - this.#now()),
    );
  }

  /** A slot freed at virtual time `freeAt`: give it to the oldest request that still wants it. */
  #next(freeAt: number): void {
    while (this.#head < this.#queue.length) {
      const job = this.#queue[this.#head] as Job;
      this.#queue[this.#head++] = undefined as unknown as Job;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (job.skip?.() === true) {
        this.skipped++;
        job.resolve({ waitMs: Math.max(0, freeAt - job.arrivedAt), skipped: true });
        continue;
      }
      this.#start(job, Math.max(freeAt, job.arrivedAt));
      return;
    }
    this.#busy--;
  }
}

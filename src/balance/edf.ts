/**
 * Earliest-deadline-first scheduling of weighted entries — how Envoy does weighted round-robin
 * (`EdfScheduler`): each entry has a deadline, the entry with the earliest one is picked and
 * its deadline moves 1 / weight further. An entry of weight 3 is picked three times for every
 * pick of an entry of weight 1, interleaved rather than in bursts, at O(log n) per pick (a
 * binary heap) where the classic "smooth weighted round-robin" of nginx scans all n.
 *
 * Equal deadlines are broken by the order entries were (re)scheduled, so equal weights visit
 * the entries in turn, in index order. Pure: numbers in, an index out.
 */

/**
 * An EDF schedule over entries 0 … n-1 with the given weights (fixed for its lifetime: a new
 * weight means a new scheduler).
 * @example const edf = new EdfScheduler(new Float64Array([3, 1])); edf.next(); // 0, 0, 1, 0, …
 */
export class EdfScheduler {
  /** Entry indices in heap order (earliest deadline first). */
  readonly #heap: Int32Array;
  readonly #deadline: Float64Array;
  /** When each entry was last scheduled: the tie-breaker. */
  readonly #order: Float64Array;
  readonly #step: Float64Array;
  #size = 0;
  #sequence = 0;

  /** Schedules every entry with a usable weight (> 0); entries of weight 0 are never picked. */
  constructor(weights: Float64Array) {
    const n = weights.length;
    this.#heap = new Int32Array(n);
    this.#deadline = new Float64Array(n);
    this.#order = new Float64Array(n);
    this.#step = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const w = weights[i] as number;
      if (!(w > 0)) continue;
      this.#step[i] = 1 / w;
      this.#deadline[i] = 1 / w;
      this.#order[i] = this.#sequence++;
      this.#heap[this.#size++] = i;
    }
    for (let at = (this.#size >>> 1) - 1; at >= 0; at--) this.#siftDown(at);
  }

  /** Entries that can be picked (weight > 0). */
  get size(): number {
    return this.#size;
  }

  /** The entry with the earliest deadline, rescheduled one step (1 / weight) later. -1 when empty. */
  next(): number {
    if (this.#size === 0) return -1;
    const top = this.#heap[0] as number;
    const deadline = this.#deadline[top] as number;
    // Deadlines only grow; rebase them long before a step is lost in a double's precision.
    if (deadline > 2 ** 40) this.#rebase(deadline);
    this.#deadline[top] = (this.#deadline[top] as number) + (this.#step[top] as number);
    this.#order[top] = this.#sequence++;
    this.#siftDown(0);
    return top;
  }

  #rebase(by: number): void {
    for (let k = 0; k < this.#size; k++) {
      const i = this.#heap[k] as number;
      this.#deadline[i] = (this.#deadline[i] as number) - by;
    }
  }

  #before(a: number, b: number): boolean {
    const da = this.#deadline[a] as number;
    const db = this.#deadline[b] as number;
    return da < db || (da === db && (this.#order[a] as number) < (this.#order[b] as number));
  }

  #siftDown(at: number): void {
    const heap = this.#heap;
    const size = this.#size;
    const entry = heap[at] as number;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && this.#before(heap[right] as number, heap[child] as number)) child = right;
      if (!this.#before(heap[child] as number, entry)) break;
      heap[at] = heap[child] as number;
      at = child;
    }
    heap[at] = entry;
  }
}

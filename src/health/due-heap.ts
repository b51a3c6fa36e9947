/**
 * A min-heap of items by due time, each item knowing its own slot so that moving or removing it
 * is O(log n) without a search. The health checker keeps one item per endpoint (due at its next
 * check, or at the deadline of the check in flight) and arms a single timer for the heap's top —
 * one timer for a thousand endpoints instead of a thousand timers.
 */

export interface DueItem {
  /** Clock time the item is due. Change it only through `DueHeap.update`. */
  due: number;
  /** Slot in the heap, -1 when not in one. Owned by the heap. */
  slot: number;
}

export class DueHeap<T extends DueItem> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The item due first, or undefined. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    item.slot = this.#items.push(item) - 1;
    this.#up(item.slot);
  }

  /** Sets `item.due` and restores the order. */
  update(item: T, due: number): void {
    const earlier = due < item.due;
    item.due = due;
    if (item.slot < 0) return;
    if (earlier) this.#up(item.slot);
    else this.#down(item.slot);
  }

  remove(item: T): void {
    const at = item.slot;
    if (at < 0) return;
    const last = this.#items.pop() as T;
    item.slot = -1;
    if (last === item) return;
    this.#items[at] = last;
    last.slot = at;
    this.#up(at);
    this.#down(last.slot);
  }

  clear(): void {
    for (const item of this.#items) item.slot = -1;
    this.#items.length = 0;
  }

  #up(at: number): void {
    const items = this.#items;
    const item = items[at] as T;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const above = items[parent] as T;
      if (above.due <= item.due) break;
      items[at] = above;
      above.slot = at;
      at = parent;
    }
    items[at] = item;
    item.slot = at;
  }

  #down(at: number): void {
    const items = this.#items;
    const n = items.length;
    const item = items[at] as T;
    for (;;) {
      const l = 2 * at + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && (items[r] as T).due < (items[l] as T).due ? r : l;
      const below = items[child] as T;
      if (below.due >= item.due) break;
      items[at] = below;
      below.slot = at;
      at = child;
    }
    items[at] = item;
    item.slot = at;
  }
}

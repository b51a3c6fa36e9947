/**
 * The waiting line of the concurrency limit: an intrusive doubly linked FIFO. Each waiter *is* its
 * own list node, so joining, leaving from the front and leaving from the middle (a waiter whose
 * deadline passed or whose caller cancelled) are all O(1) with no allocation beyond the waiter —
 * unlike `Array.shift` (O(n) on large arrays) or a ring buffer (which cannot drop a middle entry
 * without a scan or a tombstone).
 */

/** A node of a {@link LinkedQueue}. A node is in at most one queue at a time. */
export class QueueNode {
  /** Neighbours while queued; both `null` otherwise. */
  queuePrev: QueueNode | null = null;
  queueNext: QueueNode | null = null;
  /** True while the node is in a queue. */
  queued = false;
}

/**
 * FIFO of nodes: `push` at the back, `shift` from the front, `remove` from anywhere, all O(1).
 * @example const q = new LinkedQueue<Waiter>(); q.push(w); q.remove(w); q.shift();
 */
export class LinkedQueue<T extends QueueNode> {
  #head: QueueNode | null = null;
  #tail: QueueNode | null = null;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Appends `node`; it must not already be queued. */
  push(node: T): void {
    if (node.queued) throw new Error("LinkedQueue: node is already queued");
    node.queued = true;
    node.queuePrev = this.#tail;
    node.queueNext = null;
    if (this.#tail === null) this.#head = node;
    else this.#tail.queueNext = node;
    this.#tail = node;
    this.#size++;
  }

  /** Removes and returns the oldest node, or `undefined` when empty. */
  shift(): T | undefined {
    const head = this.#head;
    if (head === null) return undefined;
    this.#unlink(head);
    return head as T;
  }

  /** The oldest node without removing it. */
  peek(): T | undefined {
    return (this.#head ?? undefined) as T | undefined;
  }

  /** Takes `node` out of this queue; false when it was not queued (already shifted or removed). */
  remove(node: T): boolean {
    if (!node.queued) return false;
    this.#unlink(node);
    return true;
  }

  /** The nodes, oldest first (for tests and snapshots; O(n)). */
  toArray(): T[] {
    const out: T[] = [];
    for (let node = this.#head; node !== null; node = node.queueNext) out.push(node as T);
    return out;
  }

  #unlink(node: QueueNode): void {
    const prev = node.queuePrev;
    const next = node.queueNext;
    if (prev === null) this.#head = next;
    else prev.queueNext = next;
    if (next === null) this.#tail = prev;
    else next.queuePrev = prev;
    node.queuePrev = null;
    node.queueNext = null;
    node.queued = false;
    this.#size--;
  }
}

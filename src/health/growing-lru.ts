/**
 * An `lru-cache` that starts small and doubles up to its bound. lru-cache allocates its slot
 * arrays for `max` entries up front — ~190 KB per client for the breakers' default bound of
 * 10,000 endpoints, most of them never used by a client that talks to a handful of replicas.
 * Growing by doubling keeps that bound (eviction still starts at `max`) while a client pays for
 * the endpoints it has: a growth step re-inserts the entries, least recently used first, so
 * recency is kept, and the old cache is dropped without disposing anything.
 */
import { LRUCache } from "lru-cache";

const INITIAL_CAPACITY = 64;

export class GrowingLru<K extends object, V extends object> {
  readonly #max: number;
  readonly #disposeAfter: LRUCache.Disposer<K, V>;
  #cache: LRUCache<K, V>;

  /** @param max The bound: from here on, adding an entry evicts the least recently used one. */
  constructor(max: number, disposeAfter: LRUCache.Disposer<K, V>) {
    this.#max = max;
    this.#disposeAfter = disposeAfter;
    this.#cache = new LRUCache<K, V>({ max: Math.min(INITIAL_CAPACITY, max), disposeAfter });
  }

  /** Slots allocated now (grows by doubling up to the bound). */
  get capacity(): number {
    return this.#cache.max;
  }

  get size(): number {
    return this.#cache.size;
  }

  get(key: K): V | undefined {
    return this.#cache.get(key);
  }

  peek(key: K): V | undefined {
    return this.#cache.peek(key);
  }

  set(key: K, value: V): void {
    const cache = this.#cache;
    if (cache.size >= cache.max && cache.max < this.#max && !cache.has(key)) this.#grow();
    this.#cache.set(key, value);
  }

  delete(key: K): void {
    this.#cache.delete(key);
  }

  values(): Generator<V, void, unknown> {
    return this.#cache.values();
  }

  /** Removes every entry, disposing each. */
  clear(): void {
    this.#cache.clear();
  }

  #grow(): void {
    const old = this.#cache;
    const next = new LRUCache<K, V>({ max: Math.min(old.max * 2, this.#max), disposeAfter: this.#disposeAfter });
    // Least recently used first, so the new cache orders them as the old one did.
    for (const key of old.rkeys()) {
      const value = old.peek(key);
      if (value !== undefined) next.set(key, value);
    }
    this.#cache = next;
  }
}

import { describe, expect, it } from "vitest";
import { GrowingLru } from "./growing-lru.js";

interface Key {
  readonly id: number;
}

function setup(max: number) {
  const disposed: [number, string][] = [];
  const lru = new GrowingLru<Key, { v: number }>(max, (value, key, reason) => disposed.push([key.id, reason]));
  const keys = Array.from({ length: max + 10 }, (_, id) => ({ id }));
  return { lru, disposed, keys };
}

describe("GrowingLru", () => {
  it("starts with 64 slots and doubles up to its bound, disposing nothing while it grows", () => {
    const { lru, disposed, keys } = setup(1000);
    expect(lru.capacity).toBe(64);
    for (let i = 0; i < 65; i++) lru.set(keys[i]!, { v: i });
    expect(lru.capacity).toBe(128);
    for (let i = 65; i < 1000; i++) lru.set(keys[i]!, { v: i });
    expect(lru.capacity).toBe(1000);
    expect(lru.size).toBe(1000);
    expect(disposed).toEqual([]);
    expect(lru.peek(keys[3]!)).toEqual({ v: 3 });
  });

  it("keeps recency across a growth step: at the bound it evicts the least recently used", () => {
    const { lru, disposed, keys } = setup(128);
    for (let i = 0; i < 64; i++) lru.set(keys[i]!, { v: i });
    lru.get(keys[0]!); // 0 is now the most recently used; 1 the least
    for (let i = 64; i < 129; i++) lru.set(keys[i]!, { v: i }); // grows at 65, evicts once at 129
    expect(lru.capacity).toBe(128);
    expect(disposed).toEqual([[1, "evict"]]);
    expect(lru.peek(keys[0]!)).toBeDefined();
  });

  it("does not grow to replace an entry it already holds", () => {
    const { lru, keys } = setup(1000);
    for (let i = 0; i < 64; i++) lru.set(keys[i]!, { v: i });
    lru.set(keys[5]!, { v: 50 });
    expect(lru.capacity).toBe(64);
    expect(lru.peek(keys[5]!)).toEqual({ v: 50 });
  });

  it("disposes every entry on clear and on delete", () => {
    const { lru, disposed, keys } = setup(10);
    lru.set(keys[0]!, { v: 0 });
    lru.set(keys[1]!, { v: 1 });
    lru.delete(keys[0]!);
    lru.clear();
    expect(disposed).toEqual([
      [0, "delete"],
      [1, "delete"],
    ]);
  });
});

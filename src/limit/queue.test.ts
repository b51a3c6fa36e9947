import { describe, expect, it } from "vitest";
import { LinkedQueue, QueueNode } from "./queue.js";

class Item extends QueueNode {
  constructor(readonly id: number) {
    super();
  }
}

const ids = (q: LinkedQueue<Item>): number[] => q.toArray().map((i) => i.id);

describe("LinkedQueue", () => {
  it("is first in, first out", () => {
    const q = new LinkedQueue<Item>();
    for (let i = 1; i <= 4; i++) q.push(new Item(i));
    expect(q.size).toBe(4);
    expect(q.peek()?.id).toBe(1);
    expect([q.shift()?.id, q.shift()?.id, q.shift()?.id, q.shift()?.id]).toEqual([1, 2, 3, 4]);
    expect(q.shift()).toBeUndefined();
    expect(q.size).toBe(0);
  });

  it("removes a node from the middle, the front or the back and keeps the order of the rest", () => {
    const q = new LinkedQueue<Item>();
    const items = [1, 2, 3, 4, 5].map((i) => new Item(i));
    for (const item of items) q.push(item);
    expect(q.remove(items[2] as Item)).toBe(true);
    expect(ids(q)).toEqual([1, 2, 4, 5]);
    expect(q.remove(items[0] as Item)).toBe(true);
    expect(q.remove(items[4] as Item)).toBe(true);
    expect(ids(q)).toEqual([2, 4]);
    expect(q.size).toBe(2);
    q.push(new Item(6));
    expect(ids(q)).toEqual([2, 4, 6]);
  });

  it("removing a node twice, or after it was shifted, is a no-op", () => {
    const q = new LinkedQueue<Item>();
    const a = new Item(1);
    const b = new Item(2);
    q.push(a);
    q.push(b);
    expect(q.shift()).toBe(a);
    expect(q.remove(a)).toBe(false);
    expect(q.remove(b)).toBe(true);
    expect(q.remove(b)).toBe(false);
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
  });

  it("refuses a node that is already queued", () => {
    const q = new LinkedQueue<Item>();
    const a = new Item(1);
    q.push(a);
    expect(() => q.push(a)).toThrow(/already queued/);
  });

  it("a removed node can be queued again", () => {
    const q = new LinkedQueue<Item>();
    const a = new Item(1);
    q.push(a);
    q.push(new Item(2));
    q.remove(a);
    q.push(a);
    expect(ids(q)).toEqual([2, 1]);
  });

  it("stays O(1) per operation with a hundred thousand waiters", () => {
    const q = new LinkedQueue<Item>();
    const items = Array.from({ length: 100_000 }, (_, i) => new Item(i));
    const start = performance.now();
    for (const item of items) q.push(item);
    for (let i = 1; i < items.length; i += 2) q.remove(items[i] as Item);
    let n = 0;
    while (q.shift() !== undefined) n++;
    expect(n).toBe(50_000);
    // A smoke check with a loose bound, not a benchmark: it takes a few ms.
    expect(performance.now() - start).toBeLessThan(1_000);
  });
});

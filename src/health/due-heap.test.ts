import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { DueHeap, type DueItem } from "./due-heap.js";

interface Item extends DueItem {
  readonly id: number;
}

describe("DueHeap", () => {
  it("always has the earliest item on top, through pushes, updates and removals", () => {
    const random = seededRandom(11);
    const heap = new DueHeap<Item>();
    const live = new Set<Item>();
    for (let step = 0; step < 5000; step++) {
      const roll = random();
      const items = [...live];
      if (roll < 0.4 || items.length === 0) {
        const item: Item = { id: step, due: Math.floor(random() * 1000), slot: -1 };
        heap.push(item);
        live.add(item);
      } else if (roll < 0.75) {
        heap.update(items[Math.floor(random() * items.length)]!, Math.floor(random() * 1000));
      } else {
        const item = items[Math.floor(random() * items.length)]!;
        heap.remove(item);
        live.delete(item);
        expect(item.slot).toBe(-1);
      }
      expect(heap.size).toBe(live.size);
      const min = Math.min(...[...live].map((i) => i.due));
      expect(heap.peek()?.due ?? Infinity).toBe(min);
    }
  });

  it("ignores removing an item twice and forgets everything on clear", () => {
    const heap = new DueHeap<Item>();
    const a: Item = { id: 1, due: 5, slot: -1 };
    const b: Item = { id: 2, due: 3, slot: -1 };
    heap.push(a);
    heap.push(b);
    heap.remove(b);
    heap.remove(b);
    expect(heap.peek()).toBe(a);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(a.slot).toBe(-1);
  });
});

import { describe, expect, it } from "vitest";
import { historyTail, mergeHistories, type HistoryCarrier } from "./history-delta.js";

interface Point {
  readonly at: number;
  readonly requests: number;
}

const T0 = Date.UTC(2026, 0, 1);
/** Points for seconds `from`..`to` after T0 (inclusive), each with `requests` = its second. */
function seconds(from: number, to: number, offsetMs = 0): Point[] {
  const points: Point[] = [];
  for (let s = from; s <= to; s++) points.push({ at: T0 + s * 1000 + offsetMs, requests: s });
  return points;
}
function client(service: string, history: readonly Point[]): HistoryCarrier<Point> {
  return { service, stats: { history } };
}
/** Which second after T0 a point is (+ 0: no -0 for a point a millisecond early). */
const secondOf = (p: Point): number => Math.round((p.at - T0) / 1000) + 0;
const seconds_ = (history: readonly Point[] | undefined): number[] | undefined => history?.map(secondOf);

/** The browser's copy: the function's own source, evaluated where nothing of this module is in scope. */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating the page's copy is the point of the test
const pageMergeHistories = (new Function(`return ${mergeHistories.toString()}`) as () => typeof mergeHistories)();

describe("historyTail", () => {
  it("sends the whole history for a client the page has not seen", () => {
    const history = seconds(0, 99);
    expect(historyTail(history, undefined)).toBe(history);
  });

  it("sends the last point sent again (its second was still filling) and everything newer", () => {
    const history = seconds(0, 99);
    expect(seconds_(historyTail(history, T0 + 97_000))).toEqual([97, 98, 99]);
    expect(seconds_(historyTail(history, T0 + 98_000))).toEqual([98, 99]);
  });

  it("matches the last point sent by second, when its at comes back a millisecond off", () => {
    expect(seconds_(historyTail(seconds(0, 99, 1), T0 + 97_000))).toEqual([97, 98, 99]);
    expect(seconds_(historyTail(seconds(0, 99, -1), T0 + 97_000))).toEqual([97, 98, 99]);
  });

  it("never sends fewer than the last 2 points, even when the wall clock stepped back", () => {
    const history = seconds(0, 99);
    expect(seconds_(historyTail(history, T0 + 99_000))).toEqual([98, 99]);
    expect(seconds_(historyTail(history, T0 + 500_000))).toEqual([98, 99]);
    expect(seconds_(historyTail(seconds(5, 5), T0 + 5_000))).toEqual([5]);
    expect(historyTail([], T0)).toEqual([]);
  });
});

describe.each([
  ["mergeHistories", mergeHistories],
  ["mergeHistories as inlined into the page (toString)", pageMergeHistories],
])("%s", (_name, merge) => {
  it("takes a snapshot's histories as sent, dropping what was kept", () => {
    const kept = new Map([["catalog", seconds(0, 50)]]);
    const merged = merge(kept, [client("catalog", seconds(10, 20))], true);
    expect(seconds_(merged.get("catalog"))).toEqual(seconds_(seconds(10, 20)));
  });

  it("replaces the kept points of the same second with an update's and appends the newer ones", () => {
    const kept = new Map([["catalog", [...seconds(0, 8), { at: T0 + 9000, requests: 3 }]]]);
    const merged = merge(
      kept,
      [
        client("catalog", [
          { at: T0 + 9000, requests: 10 },
          { at: T0 + 10_000, requests: 4 },
        ]),
      ],
      false,
    );
    expect(merged.get("catalog")).toEqual([
      ...seconds(0, 8),
      { at: T0 + 9000, requests: 10 },
      { at: T0 + 10_000, requests: 4 },
    ]);
  });

  it("treats points less than 500 ms apart as the same second (at is a millisecond off between snapshots)", () => {
    const kept = new Map([["catalog", seconds(0, 9)]]);
    const merged = merge(kept, [client("catalog", seconds(8, 10, 1))], false);
    expect(merged.get("catalog")).toEqual([...seconds(0, 7), ...seconds(8, 10, 1)]);
    const earlier = merge(kept, [client("catalog", seconds(9, 10, -1))], false);
    expect(earlier.get("catalog")).toEqual([...seconds(0, 8), ...seconds(9, 10, -1)]);
  });

  it("keeps at most 300 points and nothing 5 minutes older than the newest", () => {
    const kept = new Map([["catalog", seconds(0, 299)]]);
    const merged = merge(kept, [client("catalog", seconds(299, 301))], false);
    expect(seconds_(merged.get("catalog"))).toEqual(seconds_(seconds(2, 301)));
    // A gap: the points before it that are 5 minutes older than the newest go, though fewer than 300.
    const gap = merge(new Map([["catalog", seconds(0, 9)]]), [client("catalog", seconds(305, 306))], false);
    expect(seconds_(gap.get("catalog"))).toEqual([7, 8, 9, 305, 306]);
    const snapshot = merge(new Map(), [client("catalog", seconds(0, 399))], true);
    expect(snapshot.get("catalog")).toHaveLength(300);
    expect(seconds_(snapshot.get("catalog"))?.[0]).toBe(100);
  });

  it("drops services that are gone and starts fresh for one that appears", () => {
    const kept = new Map([
      ["catalog", seconds(0, 9)],
      ["pricing", seconds(0, 9)],
    ]);
    const merged = merge(kept, [client("inventory", seconds(8, 9)), client("catalog", seconds(9, 10))], false);
    expect([...merged.keys()]).toEqual(["inventory", "catalog"]);
    expect(seconds_(merged.get("inventory"))).toEqual([8, 9]);
    expect(seconds_(merged.get("catalog"))).toEqual(seconds_(seconds(0, 10)));
  });

  it("keeps the history as it was when an update sends no point, and leaves the kept map alone", () => {
    const history = seconds(0, 9);
    const kept = new Map([["catalog", history]]);
    const merged = merge(kept, [client("catalog", [])], false);
    expect(merged.get("catalog")).toEqual(history);
    merge(kept, [client("catalog", seconds(5, 12))], false);
    expect(kept.get("catalog")).toBe(history);
    expect(history).toEqual(seconds(0, 9));
  });

  it("rebuilds the server's history exactly from one snapshot and then tails alone, tick after tick", () => {
    // The server's side: a history that grows a second at a time up to 300 points, its newest
    // point still filling; at drifts by a millisecond either way from one snapshot to the next.
    const serverHistory = (newest: number, filled: number, offsetMs: number): Point[] =>
      seconds(Math.max(0, newest - 299), newest, offsetMs).map((p) =>
        p.requests === newest ? { ...p, requests: filled } : p,
      );
    let sentUpTo: number | undefined;
    let page = new Map<string, Point[]>();
    for (let tick = 0; tick < 700; tick++) {
      const newest = 250 + Math.floor(tick / 2); // two ticks a second
      const history = serverHistory(newest, tick % 2 === 0 ? 1 : 2, [0, 1, -1][tick % 3]!);
      const sent = historyTail(history, sentUpTo);
      if (tick > 0) expect(sent.length).toBeLessThanOrEqual(2);
      page = merge(page, [client("catalog", sent)], tick === 0);
      sentUpTo = history.at(-1)!.at;
      expect(page.get("catalog")!.map((p) => [secondOf(p), p.requests])).toEqual(
        history.map((p) => [secondOf(p), p.requests]),
      );
    }
  });
});

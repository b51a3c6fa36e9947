import { describe, expect, it } from "vitest";
import { EndpointSet } from "./endpoint.js";

const urls = (n: number) => Array.from({ length: n }, (_, i) => ({ url: `http://127.0.0.1:${9000 + i}` }));

describe("EndpointSet", () => {
  it("keeps state across updates, drains removed endpoints and adds new ones fresh", () => {
    const set = new EndpointSet();
    set.update(urls(3), 0);
    const kept = set.get("http://127.0.0.1:9001");
    if (kept === undefined) throw new Error("missing");
    kept.inflight = 2;
    const { added, removed } = set.update([...urls(2), { url: "http://127.0.0.1:9100" }], 10);
    expect(added.map((e) => e.port)).toEqual([9100]);
    expect(removed.map((e) => e.port)).toEqual([9002]);
    expect(removed[0]?.state).toBe("draining");
    expect(set.get("http://127.0.0.1:9001")?.inflight).toBe(2);
    expect(set.ready.map((e) => e.port)).toEqual([9000, 9001, 9100]);
  });

  it("leaves out endpoints that are ejected, breaker-open or failing active checks", () => {
    const set = new EndpointSet();
    set.update(urls(6), 0);
    const [a, b, c] = set.all;
    if (a === undefined || b === undefined || c === undefined) throw new Error("missing");
    a.state = "ejected";
    b.breaker = "open";
    c.activeHealthy = false;
    set.refresh();
    expect(set.ready.map((e) => e.port)).toEqual([9003, 9004, 9005]);
    expect(set.panic).toBe(false);
  });

  it("keeps the same ready array while its members do not change", () => {
    const set = new EndpointSet();
    set.update(urls(3), 0);
    const before = set.ready;
    const [a] = set.all;
    if (a === undefined) throw new Error("missing");
    a.breaker = "halfOpen";
    set.refresh();
    expect(set.ready).toBe(before);
    a.breaker = "open";
    set.refresh();
    expect(set.ready).not.toBe(before);
    expect(set.ready).toHaveLength(2);
  });

  it("panics below the threshold: balances across every endpoint but the draining ones", () => {
    const set = new EndpointSet();
    set.update(urls(4), 0);
    for (const e of set.all.slice(0, 3)) e.state = "ejected";
    set.refresh();
    expect(set.panic).toBe(true);
    expect(set.ready).toHaveLength(4);
    set.panicThreshold = 0;
    set.refresh();
    expect(set.panic).toBe(false);
    expect(set.ready.map((e) => e.port)).toEqual([9003]);
  });
});

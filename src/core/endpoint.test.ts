import { describe, expect, it } from "vitest";
import { gates } from "../../test/helpers/gate.js";
import { EndpointSet, type Endpoint } from "./endpoint.js";

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
    const { eject, open } = gates(set);
    const failing = gates(set).eject; // a health checker: panic overrides it too
    set.update(urls(6), 0);
    const [a, b, c] = set.all;
    if (a === undefined || b === undefined || c === undefined) throw new Error("missing");
    eject.held.add(a);
    open.held.add(b);
    failing.held.add(c);
    set.refresh(0);
    expect(set.ready.map((e) => e.port)).toEqual([9003, 9004, 9005]);
    expect(set.panic).toBe(false);
  });

  it("keeps the same ready array while its members do not change", () => {
    const set = new EndpointSet();
    const { open } = gates(set);
    set.update(urls(3), 0);
    const before = set.ready;
    const [a] = set.all;
    if (a === undefined) throw new Error("missing");
    set.refresh(0); // a gate signalled, but its answer did not change (a breaker going half-open)
    expect(set.ready).toBe(before);
    open.held.add(a);
    set.refresh(0);
    expect(set.ready).not.toBe(before);
    expect(set.ready).toHaveLength(2);
  });

  it("panics below the threshold: balances across every endpoint but the draining ones", () => {
    const set = new EndpointSet();
    const { eject } = gates(set);
    set.update(urls(4), 0);
    for (const e of set.all.slice(0, 3)) eject.held.add(e);
    set.refresh(0);
    expect(set.panic).toBe(true);
    expect(set.ready).toHaveLength(4);
    set.panicThreshold = 0;
    set.refresh(0);
    expect(set.panic).toBe(false);
    expect(set.ready.map((e) => e.port)).toEqual([9003]);
  });

  it("never panics into an endpoint whose breaker is open: with every one open, calls fail fast", () => {
    const set = new EndpointSet();
    const { eject, open } = gates(set);
    set.update(urls(3), 0);
    const [a, b, c] = set.all as [Endpoint, Endpoint, Endpoint];
    eject.held.add(a);
    eject.held.add(c);
    open.held.add(b);
    set.refresh(0);
    expect(set.panic).toBe(true);
    expect(set.ready).toEqual([a, c]);
    open.held.add(a);
    open.held.add(c);
    set.refresh(0);
    expect(set.ready).toEqual([]);
    expect(set.guardedOut).toBe(true);
  });

  it("ramps an endpoint that comes back while others serve, not one that is all there is", () => {
    const set = new EndpointSet();
    const { eject } = gates(set);
    set.update(urls(2), 0);
    const [a, b] = set.all as [Endpoint, Endpoint];
    expect([a.readySince, b.readySince]).toEqual([-Infinity, -Infinity]); // the first set does not ramp
    eject.held.add(a);
    set.refresh(1000);
    eject.held.delete(a);
    set.refresh(2000);
    expect(a.readySince).toBe(2000); // b served meanwhile: a ramps back in
    eject.held.add(a);
    eject.held.add(b);
    set.refresh(3000);
    eject.held.delete(a);
    set.refresh(4000);
    expect(a.readySince).toBe(-Infinity); // alone: it takes the traffic at once
    set.update([...urls(2), { url: "http://127.0.0.1:9100" }], 5000);
    expect(set.get("http://127.0.0.1:9100")?.readySince).toBe(5000); // joined while others serve
  });
});

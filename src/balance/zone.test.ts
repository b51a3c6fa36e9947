import { describe, expect, it } from "vitest";
import { Endpoint, EndpointSet } from "../core/endpoint.js";
import { invalidOption } from "../../test/helpers/options.js";
import { TestGate } from "../../test/helpers/gate.js";
import { normalizeZoneOptions, zoneCandidates } from "./zone.js";

/** A set with `local` endpoints in zone "a" and `remote` in zone "b". */
const ejected = new WeakMap<EndpointSet, TestGate>();
/** Ejects `e` from `set` (as outlier detection would). */
const eject = (set: EndpointSet, e: Endpoint): void => void ejected.get(set)?.held.add(e);

function endpointSet(local: number, remote: number): EndpointSet {
  const set = new EndpointSet();
  const gate = new TestGate();
  ejected.set(set, gate);
  set.addGate(gate);
  const infos = [
    ...Array.from({ length: local }, (_, i) => ({ url: `http://10.0.1.${i + 1}:8080`, zone: "a" })),
    ...Array.from({ length: remote }, (_, i) => ({ url: `http://10.0.2.${i + 1}:8080`, zone: "b" })),
  ];
  set.update(infos, 0);
  return set;
}

const inZone = (endpoints: readonly Endpoint[], zone: string) => endpoints.filter((e) => e.zone === zone);

describe("zoneCandidates", () => {
  it("keeps traffic in the local zone, returning the same cached array every call", () => {
    const set = endpointSet(3, 3);
    const candidates = zoneCandidates(set.ready, set.all, "a");
    expect(candidates.map((e) => e.zone)).toEqual(["a", "a", "a"]);
    // No allocation per call: the identity is stable, so pickers keep their structures.
    for (let i = 0; i < 5; i++) expect(zoneCandidates(set.ready, set.all, "a")).toBe(candidates);
  });

  it("spills over to every ready endpoint when less than 70 % of the local zone is available", () => {
    const set = endpointSet(10, 10);
    const local = inZone(set.all, "a");
    for (const e of local.slice(0, 3)) eject(set, e);
    set.refresh(0);
    // 7 of 10 available: still local.
    expect(zoneCandidates(set.ready, set.all, "a")).toHaveLength(7);
    eject(set, local[3] as Endpoint);
    set.refresh(0);
    // 6 of 10: spill over.
    expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
    expect(zoneCandidates(set.ready, set.all, "a", { minLocalHealthyPercent: 50 })).toHaveLength(6);
  });

  it("does not count draining endpoints against the zone, and spills in panic mode", () => {
    const set = endpointSet(4, 4);
    set.update(
      [...set.all.filter((e) => e.url !== "http://10.0.1.4:8080").map((e) => ({ url: e.url, zone: e.zone }))],
      0,
    );
    expect(zoneCandidates(set.ready, set.all, "a")).toHaveLength(3);
    // Most endpoints ejected: the set panics and `ready` holds unavailable ones; the local zone
    // is not healthy enough to take the traffic alone.
    for (const e of set.all.slice(0, 5)) eject(set, e);
    set.refresh(0);
    expect(set.panic).toBe(true);
    expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
  });

  it("spills over while the local zone is saturated, and comes back when it drains", () => {
    const set = endpointSet(3, 3);
    const local = inZone(set.ready, "a");
    for (const e of local) e.inflight = 8;
    expect(zoneCandidates(set.ready, set.all, "a")).toHaveLength(3);
    // Local mean 9 in flight vs remote 0: more than 8 beyond the others.
    (local[0] as Endpoint).inflight = 11;
    expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
    // The overflow went remote: the gap closes and traffic returns to the local zone.
    for (const e of inZone(set.ready, "b")) e.inflight = 2;
    expect(zoneCandidates(set.ready, set.all, "a")).toHaveLength(3);
    expect(zoneCandidates(set.ready, set.all, "a", { saturationInflight: false })).toHaveLength(3);
    for (const e of local) e.inflight = 1000;
    expect(zoneCandidates(set.ready, set.all, "a", { saturationInflight: false })).toHaveLength(3);
    expect(zoneCandidates(set.ready, set.all, "a", { saturationInflight: 2000 })).toHaveLength(3);
  });

  it("sees saturation in large zones from a rotating sample", () => {
    const set = endpointSet(200, 200);
    for (const e of inZone(set.ready, "a")) e.inflight = 20;
    for (let i = 0; i < 30; i++) expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
    for (const e of inZone(set.ready, "a")) e.inflight = 5;
    for (let i = 0; i < 30; i++) expect(zoneCandidates(set.ready, set.all, "a")).toHaveLength(200);
  });

  it("returns ready itself when no endpoint, or every endpoint, is in the local zone", () => {
    const set = endpointSet(0, 3);
    expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
    const local = endpointSet(3, 0);
    expect(zoneCandidates(local.ready, local.all, "a")).toBe(local.ready);
    const unzoned = [new Endpoint({ url: "http://127.0.0.1:1" }, 0)];
    expect(zoneCandidates(unzoned, unzoned, "a")).toBe(unzoned);
    expect(zoneCandidates([], [], "a")).toEqual([]);
  });

  it("recomputes when the set, the zone or the threshold changes", () => {
    const set = endpointSet(2, 2);
    expect(zoneCandidates(set.ready, set.all, "a").map((e) => e.zone)).toEqual(["a", "a"]);
    expect(zoneCandidates(set.ready, set.all, "b").map((e) => e.zone)).toEqual(["b", "b"]);
    const before = set.ready;
    eject(set, set.all[0] as Endpoint);
    set.refresh(0);
    expect(set.ready).not.toBe(before);
    // 1 of 2 local endpoints available: 50 % < 70 %.
    expect(zoneCandidates(set.ready, set.all, "a")).toBe(set.ready);
    expect(zoneCandidates(set.ready, set.all, "a", { minLocalHealthyPercent: 50 })).toHaveLength(1);
  });
});

describe("normalizeZoneOptions", () => {
  const option = (value: unknown) => invalidOption(() => normalizeZoneOptions(value));

  it("fills defaults into a frozen config, and reads false or undefined as off", () => {
    const config = normalizeZoneOptions({ zone: "eu-west-1a" });
    expect(config).toEqual({ zone: "eu-west-1a", minLocalHealthyPercent: 70, saturationInflight: 8 });
    expect(Object.isFrozen(config)).toBe(true);
    expect(normalizeZoneOptions({ zone: "z", minLocalHealthyPercent: 0, saturationInflight: false })).toEqual({
      zone: "z",
      minLocalHealthyPercent: 0,
      saturationInflight: false,
    });
    expect(normalizeZoneOptions(false)).toBeUndefined();
    expect(normalizeZoneOptions(undefined)).toBeUndefined();
  });

  it("names the bad option", () => {
    expect(option("eu-west-1a")).toBe("zoneAware");
    expect(option({})).toBe("zoneAware.zone");
    expect(option({ zone: "" })).toBe("zoneAware.zone");
    expect(option({ zone: "a", minLocalHealthyPercent: 120 })).toBe("zoneAware.minLocalHealthyPercent");
    expect(option({ zone: "a", minLocalHealthyPercent: "70" })).toBe("zoneAware.minLocalHealthyPercent");
    expect(option({ zone: "a", saturationInflight: -1 })).toBe("zoneAware.saturationInflight");
    expect(option({ zone: "a", saturationInflight: true })).toBe("zoneAware.saturationInflight");
    expect(option({ zone: "a", minLocalHealthPercent: 50 })).toBe("zoneAware.minLocalHealthPercent");
    expect(() => normalizeZoneOptions({ zone: "a", minLocalHealthPercent: 50 })).toThrow(
      /did you mean zoneAware\.minLocalHealthyPercent/,
    );
  });
});

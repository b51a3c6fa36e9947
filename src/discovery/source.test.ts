import { describe, expect, it } from "vitest";
import type { EndpointInfo } from "../core/endpoint.js";
import type { ResolverSnapshot } from "../core/discovery.js";
import { fakeClock } from "../testing/fake-clock.js";
import { checkSourceBackoff } from "../core/source.js";
import { sameSet, SourceResolver } from "./source.js";

/** A source whose backend answers are scripted by the test. */
class ScriptedSource extends SourceResolver {
  started = 0;
  stopped = 0;
  reads = 0;
  answers: (readonly EndpointInfo[] | Error)[] = [];
  protected start(): void {
    this.started++;
    this.refresh();
  }
  protected async stop(): Promise<void> {
    this.stopped++;
  }
  protected override refresh(): void {
    this.reads++;
    const answer = this.answers.shift();
    if (answer === undefined) return;
    if (answer instanceof Error) this.failure(answer);
    else this.publish(answer);
  }
  answer(next: readonly EndpointInfo[] | Error): void {
    this.answers.push(next);
    this.refresh();
  }
}

function setup(answers: (readonly EndpointInfo[] | Error)[] = []) {
  const clock = fakeClock();
  const warnings: string[] = [];
  const source = new ScriptedSource(
    "test:source",
    { clock, random: () => 0.5, warn: (m) => warnings.push(m) },
    { baseMs: 100, maxMs: 1_000 },
  );
  source.answers = answers;
  return { clock, warnings, source };
}

const A = { url: "http://127.0.0.1:1001" };
const B = { url: "http://127.0.0.1:1002" };

describe("SourceResolver", () => {
  it("starts on the first subscriber, not before", () => {
    const { source } = setup([[A]]);
    expect(source.started).toBe(0);
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    expect(source.started).toBe(1);
    expect(sets).toEqual([[A]]);
    source.subscribe(() => {});
    expect(source.started).toBe(1);
  });

  it("gives a late subscriber the current set at once", () => {
    const { source } = setup([[A, B]]);
    source.subscribe(() => {});
    const late: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => late.push(s));
    expect(late).toEqual([[A, B]]);
  });

  it("keeps the last good set when the source fails, marks it stale and warns once per error", () => {
    const { source, warnings } = setup([[A, B]]);
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    source.answer(new Error("connection refused"));
    source.answer(new Error("connection refused"));
    expect(sets).toEqual([[A, B]]);
    const snap = source.snapshot();
    expect(snap.stale).toBe(true);
    expect(snap.lastError).toBe("connection refused");
    expect(snap.endpoints).toEqual([A, B]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("test:source");
    expect(warnings[0]).toContain("keeping the last good set of 2 endpoint(s)");
  });

  it("does not let an empty answer replace a working set", () => {
    const { source } = setup([[A]]);
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    source.answer([]);
    expect(sets).toEqual([[A]]);
    expect(source.snapshot().stale).toBe(true);
    expect(source.snapshot().lastError).toContain("no endpoints");
  });

  it("a valid answer after a failure replaces the set and clears staleness", () => {
    const { source } = setup([[A]]);
    const states: ResolverSnapshot[] = [];
    source.onState((s) => states.push(s));
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    source.answer(new Error("timeout"));
    source.answer([B]);
    expect(sets).toEqual([[A], [B]]);
    expect(source.snapshot()).toMatchObject({ stale: false, lastError: undefined, endpoints: [B] });
    expect(states.map((s) => s.stale)).toEqual([false, true, false]);
  });

  it("publishes nothing for an unchanged answer, in any order", () => {
    const { source } = setup([[A, B]]);
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    source.answer([B, A]);
    expect(sets).toHaveLength(1);
    source.answer([B, { ...A, weight: 3 }]);
    expect(sets).toHaveLength(2);
  });

  it("retries a failing source with growing, capped backoff on the injected clock", () => {
    const { source, clock } = setup([new Error("down")]);
    source.subscribe(() => {});
    expect(source.reads).toBe(1);
    // random 0.5: waits of 50, 100, 200, 400, 500 (cap 1000 × 0.5), 500 …
    const waits = [50, 100, 200, 400, 500, 500];
    for (const wait of waits) {
      source.answers.push(new Error("down"));
      const before = source.reads;
      clock.advance(wait - 1);
      expect(source.reads).toBe(before);
      clock.advance(1);
      expect(source.reads).toBe(before + 1);
    }
  });

  it("close stops the source and its retry timer, and ignores late answers", async () => {
    const { source, clock } = setup([new Error("down")]);
    const sets: (readonly EndpointInfo[])[] = [];
    source.subscribe((s) => sets.push(s));
    await source.close();
    expect(source.stopped).toBe(1);
    const reads = source.reads;
    clock.advance(60_000);
    expect(source.reads).toBe(reads);
    source.answer([A]);
    expect(sets).toEqual([]);
  });
});

describe("sameSet", () => {
  it("compares url, weight, zone and metadata regardless of order", () => {
    expect(sameSet([A, B], [B, A])).toBe(true);
    expect(sameSet([A], [{ ...A, zone: "a" }])).toBe(false);
    expect(sameSet([A], [{ ...A, metadata: { v: "2" } }])).toBe(false);
    expect(sameSet([A], [A, B])).toBe(false);
  });
});

describe("checkSourceBackoff", () => {
  it("names the option and what is allowed", () => {
    expect(() => checkSourceBackoff("dnsDiscovery.backoff", { baseMs: -1 })).toThrow(
      /dnsDiscovery\.backoff\.baseMs.*positive number/,
    );
    expect(() => checkSourceBackoff("x.backoff", { baseMs: 500, maxMs: 100 })).toThrow(/x\.backoff\.maxMs/);
    expect(() => checkSourceBackoff("x.backoff", { base: 1 })).toThrow(/unknown option x\.backoff\.base/);
    expect(checkSourceBackoff("x.backoff", { baseMs: 10 })).toEqual({ baseMs: 10, maxMs: 10_000 });
  });
});

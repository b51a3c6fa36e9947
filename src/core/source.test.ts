/**
 * The rules of `WatchedSource` that are not discovery's (its endpoint-set subclass is tested in
 * src/discovery/source.test.ts): the `same` and `kept` hooks, `healthy()`, `notice()`, and the
 * backoff on the injected clock, with a value type of its own.
 */
import { describe, expect, it } from "vitest";
import { fakeClock } from "../testing/fake-clock.js";
import { WatchedSource, type SourceState } from "./source.js";

interface Doc {
  readonly version: number;
  readonly text: string;
}

/** Documents whose backend answers are scripted by the test; two are the same when their texts are. */
class ScriptedDocs extends WatchedSource<Doc, SourceState<Doc>> {
  reads = 0;
  stopped = 0;
  protected start(): void {}
  protected async stop(): Promise<void> {
    this.stopped++;
  }
  protected same(current: Doc, next: Doc): boolean {
    return current.text === next.text;
  }
  protected kept(doc: Doc | undefined): string {
    return doc === undefined ? "nothing to keep" : `keeping v${doc.version}`;
  }
  snapshot(): SourceState<Doc> {
    return this.state();
  }
  protected override refresh(): void {
    this.reads++;
  }
  answer(doc: Doc): void {
    this.publish(doc);
  }
  fail(error: string, retry = true): void {
    this.failure(new Error(error), retry);
  }
  empty(): void {
    this.healthy();
  }
  say(message: string): void {
    this.notice(message);
  }
}

function setup() {
  const clock = fakeClock();
  const warnings: string[] = [];
  const source = new ScriptedDocs({
    source: "test:docs",
    label: "weft test",
    context: { clock, random: () => 1, warn: (m) => warnings.push(m) },
    backoff: { baseMs: 100, maxMs: 400 },
  });
  const published: Doc[] = [];
  const states: boolean[] = [];
  source.subscribe((doc) => published.push(doc));
  source.onState((s) => states.push(s.stale));
  return { clock, warnings, source, published, states };
}

describe("WatchedSource", () => {
  it("publishes only a value that `same` says is new, and the snapshot keeps the last published", () => {
    const { source, published } = setup();
    source.answer({ version: 1, text: "a" });
    source.answer({ version: 2, text: "a" });
    source.answer({ version: 3, text: "b" });
    expect(published.map((d) => d.version)).toEqual([1, 3]);
    expect(source.snapshot().value).toEqual({ version: 3, text: "b" });
  });

  it("describes the kept value with `kept` and prefixes warnings with the label and the source", () => {
    const { source, warnings } = setup();
    source.fail("down", false);
    source.answer({ version: 4, text: "a" });
    source.fail("broken", false);
    expect(warnings).toEqual(["weft test test:docs: down; nothing to keep", "weft test test:docs: broken; keeping v4"]);
    expect(source.snapshot()).toMatchObject({ stale: true, lastError: "broken", value: { version: 4 } });
  });

  it("healthy() clears staleness without publishing; notice() warns without turning stale", () => {
    const { source, published, states, warnings, clock } = setup();
    source.say("does not exist yet");
    expect(source.snapshot()).toMatchObject({ stale: false, lastError: undefined, updatedAt: undefined });
    source.fail("cannot parse", false);
    clock.advance(5);
    source.empty();
    expect(published).toEqual([]);
    expect(states).toEqual([true, false]);
    expect(source.snapshot()).toMatchObject({ stale: false, lastError: undefined, updatedAt: 5, value: undefined });
    expect(warnings[0]).toBe("weft test test:docs: does not exist yet");
    source.empty();
    expect(states).toEqual([true, false]); // already fresh: no state event
  });

  it("retries with backoff doubling to maxMs on the injected clock, and starts over after a success", () => {
    const { source, clock } = setup();
    const retryAfter = (): number => {
      const before = source.reads;
      let waited = 0;
      while (source.reads === before) {
        clock.advance(1);
        waited++;
      }
      return waited;
    };
    source.fail("down");
    expect(retryAfter()).toBe(100);
    source.fail("down");
    expect(retryAfter()).toBe(200);
    source.fail("down");
    expect(retryAfter()).toBe(400);
    source.fail("down");
    expect(retryAfter()).toBe(400);
    source.answer({ version: 1, text: "a" });
    source.fail("down");
    expect(retryAfter()).toBe(100);
  });

  it("close() cancels the pending retry and stops the started source", async () => {
    const { source, clock } = setup();
    source.fail("down");
    expect(clock.pendingTimers).toBe(1);
    await source.close();
    expect(clock.pendingTimers).toBe(0);
    expect(source.stopped).toBe(1);
    clock.advance(1_000);
    expect(source.reads).toBe(0);
  });
});

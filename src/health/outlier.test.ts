import { afterEach, describe, expect, it, vi } from "vitest";
import type { Outcome } from "../core/classifier.js";
import { Endpoint, EndpointSet } from "../core/endpoint.js";
import { wheelFor } from "../core/wheel.js";
import { fakeClock } from "../testing/fake-clock.js";
import { OutlierDetector } from "./outlier.js";
import { normalizeOutlierOptions, type OutlierConfig, type OutlierOptions } from "./outlier-options.js";
import { NOT_RAMPING } from "./slow-start.js";

const open: OutlierDetector[] = [];
/** The detector that tracks each endpoint (the tests read its records, not endpoint fields). */
const trackedBy = new Map<Endpoint, OutlierDetector>();
const detectorOf = (e: Endpoint): OutlierDetector => {
  const detector = trackedBy.get(e);
  if (detector === undefined) throw new Error(`no detector tracks ${e.url}`);
  return detector;
};
/** "ejected" while the detector holds it out, else the endpoint's own state. */
const stateOf = (e: Endpoint): string => (detectorOf(e).isAvailable(e) ? e.state : "ejected");
const rec = (e: Endpoint) => detectorOf(e).recordOf(e) ?? { ejected: false, ejectedUntil: 0, ejections: 0 };
const track = (detector: OutlierDetector, endpoints: readonly Endpoint[]): void => {
  for (const e of endpoints) trackedBy.set(e, detector);
  detector.setEndpoints(endpoints);
};
afterEach(() => {
  for (const detector of open.splice(0)) detector.close();
});

/** A detector on a fake clock over `n` endpoints, recording its hooks' calls. */
function setup(options: OutlierOptions = {}, n = 10) {
  const clock = fakeClock();
  const config = normalizeOutlierOptions(options) as OutlierConfig;
  const events: string[] = [];
  // A real endpoint set asks the detector (its gate) whenever a hook signals a change.
  const set = new EndpointSet();
  set.update(
    Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:8080` })),
    0,
  );
  const endpoints = set.all;
  const detector = new OutlierDetector(config, clock, {
    onEject: (endpoint, reason, untilMs) => {
      events.push(`eject ${endpoint.hostname} ${reason} until ${untilMs}`);
      set.refresh(clock.now());
    },
    onReturn: (endpoint) => {
      events.push(`return ${endpoint.hostname} at ${clock.now()}`);
      set.refresh(clock.now());
    },
  });
  set.addGate(detector);
  open.push(detector);
  track(detector, endpoints);
  const feed = (endpoint: Endpoint, outcome: Outcome, times = 1): void => {
    for (let i = 0; i < times; i++) detector.observe(endpoint, outcome);
  };
  return { clock, detector, endpoints, events, feed, wheel: wheelFor(clock) };
}

describe("consecutive failures", () => {
  it("ejects an endpoint on its fifth failure in a row, for 30 s", () => {
    const { endpoints, events, feed } = setup();
    const [a] = endpoints as [Endpoint];
    feed(a, "failure", 2);
    feed(a, "retryable", 2);
    expect(stateOf(a)).toBe("healthy");
    feed(a, "failure");
    expect(stateOf(a)).toBe("ejected");
    expect(rec(a).ejectedUntil).toBe(30_000);
    expect(rec(a).ejections).toBe(1);
    expect(events).toEqual(["eject 10.0.0.1 consecutive until 30000"]);
  });

  it("starts counting again after a success", () => {
    const { endpoints, feed } = setup();
    const [a] = endpoints as [Endpoint];
    feed(a, "failure", 4);
    feed(a, "success");
    feed(a, "failure", 4);
    expect(stateOf(a)).toBe("healthy");
    feed(a, "failure");
    expect(stateOf(a)).toBe("ejected");
  });

  it("neither counts nor resets on an ignorable outcome", () => {
    const { endpoints, feed } = setup();
    const [a, b] = endpoints as [Endpoint, Endpoint];
    feed(b, "ignorable", 50);
    expect(stateOf(b)).toBe("healthy");
    feed(a, "failure", 4);
    feed(a, "ignorable", 3);
    feed(a, "failure");
    expect(stateOf(a)).toBe("ejected");
  });

  it("can be turned off", () => {
    const { endpoints, feed } = setup({ consecutiveFailures: false });
    feed(endpoints[0]!, "failure", 100);
    expect(stateOf(endpoints[0]!)).toBe("healthy");
  });

  it("never ejects a draining endpoint, and forgets endpoints discovery removed", () => {
    const { detector, endpoints, feed } = setup();
    const [a, b] = endpoints as [Endpoint, Endpoint];
    a.state = "draining";
    feed(a, "failure", 5);
    expect(stateOf(a)).toBe("draining");
    track(detector, endpoints.slice(2));
    feed(b, "failure", 5);
    expect(stateOf(b)).toBe("healthy");
  });
});

describe("ejection time", () => {
  it("returns the endpoint after its time, ramping back in while its peers serve", () => {
    const { clock, endpoints, events, feed } = setup();
    const [a] = endpoints as [Endpoint];
    feed(a, "failure", 5);
    clock.advance(29_999);
    expect(stateOf(a)).toBe("ejected");
    clock.advance(1);
    expect(stateOf(a)).toBe("healthy");
    expect(rec(a).ejectedUntil).toBe(0);
    expect(a.readySince).toBe(30_000);
    expect(events.at(-1)).toBe("return 10.0.0.1 at 30000");
  });

  it("returns an endpoint with no serving peer at full weight (nothing to ramp against)", () => {
    const { clock, endpoints, feed } = setup({}, 1);
    feed(endpoints[0]!, "failure", 5);
    expect(stateOf(endpoints[0]!)).toBe("ejected");
    clock.advance(30_000);
    expect(stateOf(endpoints[0]!)).toBe("healthy");
    expect(endpoints[0]!.readySince).toBe(NOT_RAMPING);
  });

  it("grows 30 s × ejections, up to 300 s, for an endpoint that fails again on return", () => {
    const { clock, endpoints, feed } = setup();
    const [a] = endpoints as [Endpoint];
    const lengths: number[] = [];
    for (let i = 0; i < 12; i++) {
      feed(a, "failure", 5);
      lengths.push((rec(a).ejectedUntil - clock.now()) / 1000);
      clock.advance(rec(a).ejectedUntil - clock.now());
      expect(stateOf(a)).toBe("healthy");
    }
    expect(lengths).toEqual([30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]);
    expect(rec(a).ejections).toBe(12);
  });

  it("shrinks again by one step for every interval the endpoint stays in service (Envoy's decay)", () => {
    const { clock, endpoints, feed } = setup();
    const [a] = endpoints as [Endpoint];
    feed(a, "failure", 5); // 30 s
    clock.advance(30_000);
    feed(a, "failure", 5); // 60 s, until 90 s
    expect(rec(a).ejectedUntil).toBe(90_000);
    clock.advance(60_000 + 10_000); // back at 90 s, then one full interval in service
    feed(a, "failure", 5);
    expect(rec(a).ejectedUntil - clock.now()).toBe(60_000); // multiplier 2 → 1 → 2, not 3
    clock.advance(60_000 + 20_000); // back, then two intervals in service
    feed(a, "failure", 5);
    expect(rec(a).ejectedUntil - clock.now()).toBe(30_000);
  });
});

describe("the ejection bound", () => {
  it("ejects one endpoint of three, though 10 % of three is none", () => {
    const { clock, endpoints, feed } = setup({}, 3);
    for (const endpoint of endpoints) feed(endpoint, "failure", 5);
    expect(endpoints.map((e) => stateOf(e))).toEqual(["ejected", "healthy", "healthy"]);
    clock.advance(30_000); // the first returns; the others need a fresh run of failures
    feed(endpoints[1]!, "failure", 5);
    expect(endpoints.map((e) => stateOf(e))).toEqual(["healthy", "ejected", "healthy"]);
  });

  it("ejects at most 10 % of a larger set at once", () => {
    const { detector, endpoints, feed } = setup({}, 20);
    for (const endpoint of endpoints) feed(endpoint, "failure", 5);
    expect(endpoints.filter((e) => stateOf(e) === "ejected")).toHaveLength(2);
    expect(detector.ejected).toBe(2);
  });

  it("ejects nothing at maxEjectionPercent 0", () => {
    const { endpoints, feed } = setup({ maxEjectionPercent: 0 }, 3);
    feed(endpoints[0]!, "failure", 5);
    expect(stateOf(endpoints[0]!)).toBe("healthy");
  });
});

describe("success rate", () => {
  /** One interval of traffic: `requests[i]` to the i-th endpoint, the first `failing[i]` of them failures. */
  function interval(
    feed: (e: Endpoint, o: Outcome) => void,
    endpoints: readonly Endpoint[],
    requests: number[],
    failing: number[],
  ): void {
    endpoints.forEach((endpoint, i) => {
      const n = requests[i] ?? 0;
      const bad = failing[i] ?? 0;
      for (let k = 0; k < n; k++) feed(endpoint, k < bad ? "failure" : "success");
    });
  }

  it("ejects the endpoint far below its peers' success rate at the end of the interval", () => {
    const { clock, endpoints, events, feed } = setup({ consecutiveFailures: false });
    interval(feed, endpoints, Array<number>(10).fill(100), [0, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
    clock.advance(9_999);
    expect(stateOf(endpoints[9]!)).toBe("healthy");
    clock.advance(1);
    expect(endpoints.map((e) => stateOf(e)).filter((s) => s === "ejected")).toHaveLength(1);
    expect(stateOf(endpoints[9]!)).toBe("ejected");
    expect(events).toEqual(["eject 10.0.0.10 successRate until 40000"]);
  });

  it("does nothing with fewer than 5 endpoints at the request volume", () => {
    const { clock, endpoints, feed } = setup({ consecutiveFailures: false });
    interval(feed, endpoints, [100, 100, 100, 99, 99, 99, 99, 99, 99, 100], [0, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
    clock.advance(10_000);
    expect(endpoints.every((e) => stateOf(e) === "healthy")).toBe(true);
  });

  it("does nothing below the request volume, counting each interval afresh", () => {
    const { clock, endpoints, feed } = setup({ consecutiveFailures: false });
    for (let round = 0; round < 2; round++) {
      interval(feed, endpoints, Array<number>(10).fill(60), [0, 0, 0, 0, 0, 0, 0, 0, 0, 30]);
      clock.advance(10_000);
    }
    expect(endpoints.every((e) => stateOf(e) === "healthy")).toBe(true);
  });

  it("leaves a set whose endpoints all fail alike alone", () => {
    const { clock, endpoints, feed } = setup({ consecutiveFailures: false });
    interval(feed, endpoints, Array<number>(10).fill(100), Array<number>(10).fill(3));
    clock.advance(10_000);
    expect(endpoints.every((e) => stateOf(e) === "healthy")).toBe(true);
  });

  it("does not count ignorable outcomes toward the volume", () => {
    const { clock, endpoints, feed } = setup({ consecutiveFailures: false });
    interval(feed, endpoints, Array<number>(10).fill(100), [0, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
    for (const endpoint of endpoints.slice(0, 6)) feed(endpoint, "ignorable"); // no effect either way
    clock.advance(10_000);
    expect(stateOf(endpoints[9]!)).toBe("ejected");
    for (const endpoint of endpoints) for (let k = 0; k < 100; k++) feed(endpoint, "ignorable");
    clock.advance(10_000);
    expect(endpoints.filter((e) => stateOf(e) === "ejected")).toHaveLength(1);
  });
});

describe("the timer", () => {
  it("is not armed without endpoints, nor for a small set with nothing to do", () => {
    const { clock, detector, wheel } = setup({}, 0);
    expect(wheel.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    track(detector, [new Endpoint({ url: "http://a:1" }, 0), new Endpoint({ url: "http://b:1" }, 0)]);
    expect(wheel.size).toBe(0); // 2 endpoints: success rate cannot apply, nothing is ejected
  });

  it("is one wheel entry however many endpoints are ejected, and stops on close", () => {
    const { clock, detector, endpoints, feed, wheel } = setup({ maxEjectionPercent: 50 });
    expect(wheel.size).toBe(1); // success-rate sweeps
    for (const endpoint of endpoints.slice(0, 5)) {
      feed(endpoint, "failure", 5);
      clock.advance(1000);
      expect(wheel.size).toBe(1);
    }
    expect(detector.ejected).toBe(5);
    detector.close();
    expect(wheel.size).toBe(0);
    expect(endpoints.every((e) => stateOf(e) === "healthy")).toBe(true); // nothing stranded out
    clock.advance(1_000_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it("goes idle in a small set once every endpoint is back and its multiplier has decayed", () => {
    const { clock, endpoints, feed, wheel } = setup({}, 2);
    feed(endpoints[0]!, "failure", 5);
    expect(wheel.size).toBe(1);
    clock.advance(30_000); // back
    expect(wheel.size).toBe(1); // the multiplier still decays
    clock.advance(20_000);
    expect(wheel.size).toBe(0);
    feed(endpoints[0]!, "failure", 5);
    expect(rec(endpoints[0]!).ejectedUntil - clock.now()).toBe(30_000);
  });
});

describe("hooks and handles", () => {
  it("turns a throwing hook into a process warning", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const clock = fakeClock();
    const endpoint = new Endpoint({ url: "http://a:1" }, 0);
    const detector = new OutlierDetector(normalizeOutlierOptions(undefined) as OutlierConfig, clock, {
      onEject: () => {
        throw new Error("boom");
      },
      onReturn: () => {},
    });
    open.push(detector);
    track(detector, [endpoint]);
    for (let i = 0; i < 5; i++) detector.observe(endpoint, "failure");
    expect(stateOf(endpoint)).toBe("ejected");
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining("boom"),
      expect.objectContaining({ code: "WEFT_LISTENER_ERROR" }),
    );
    warn.mockRestore();
  });

  it("returns an endpoint early on uneject(), and reports it in the snapshot", () => {
    const { detector, endpoints, events, feed } = setup();
    feed(endpoints[0]!, "failure", 5);
    feed(endpoints[1]!, "failure", 3);
    detector.uneject(endpoints[0]!);
    expect(stateOf(endpoints[0]!)).toBe("healthy");
    expect(events.at(-1)).toBe("return 10.0.0.1 at 0");
    const snapshot = detector.snapshot();
    expect(snapshot.ejected).toBe(0);
    expect(snapshot.endpoints[0]).toEqual({ url: "http://10.0.0.1:8080", consecutiveFailures: 0, multiplier: 1 });
    expect(snapshot.endpoints[1]).toEqual({ url: "http://10.0.0.2:8080", consecutiveFailures: 3, multiplier: 0 });
  });
});

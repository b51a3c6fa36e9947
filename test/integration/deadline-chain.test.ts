/**
 * Deadline propagation and cancellation across a chain of three real processes, A → B → C
 * (test/fixtures/hop.ts), each a `node:http` server behind `inbound()` calling the next hop with
 * a weft client and no deadline or signal of its own: the deadline and the cancellation reach C
 * through AsyncLocalStorage and the `x-weft-timeout-ms` header alone.
 *
 * A correctness test, not a benchmark: the bounds asserted follow from the arithmetic of the
 * chain (each hop forwards at most what it had left, less what it spent and its allowance), and
 * the only time bound is against the slow work's own length (seconds, against a deadline of
 * 150 ms). The figures are printed for docs/server-deadlines-example.md.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, staticDiscovery, type Client } from "weft";
import type { HopEvent, HopView } from "../fixtures/hop.js";
import { until } from "../helpers/until.js";

/** weft/server's default allowance: taken off the caller's time at each hop. */
const ALLOWANCE_MS = 2;
/** The middle hops' work before calling on (hop.ts), less 1 ms: a timer may fire up to 1 ms early. */
const MIN_WORK_MS = 19;
/** Float slack for comparing remaining times computed in different processes' arithmetic. */
const EPSILON_MS = 0.5;
/** The slow path's length at C: far longer than any deadline in this file, so "cut short" is unambiguous. */
const SLOW_MS = 8000;

interface Stats {
  readonly handled: number;
  readonly counters: { requests: number; expired: number; aborted: number; errors: number };
}

interface Hop {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly events: HopEvent[];
  readonly warnings: string[];
  stats(): Promise<Stats>;
  /** The first event of `kind` for request `id`, once it has happened. */
  event(id: string, kind: HopEvent["event"]): Promise<HopEvent>;
  stop(): Promise<void>;
}

async function startHop(name: string, nextUrl?: string): Promise<Hop> {
  const child = fork("test/fixtures/hop.ts", nextUrl === undefined ? [name] : [name, nextUrl], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const events: HopEvent[] = [];
  const warnings: string[] = [];
  const statsWaiters: ((s: Stats) => void)[] = [];
  child.on("message", (m: { type: string } & Record<string, unknown>) => {
    if (m.type === "event") events.push(m as unknown as HopEvent);
    else if (m.type === "warning") warnings.push(String(m.message));
    else if (m.type === "stats") statsWaiters.shift()?.(m as unknown as Stats);
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: { type: string; port: number }) =>
      m.type === "ready" ? resolve(m.port) : reject(new Error(`hop ${name}: ${JSON.stringify(m)}`)),
    );
    child.once("exit", (code) => reject(new Error(`hop ${name} exited early with code ${code}`)));
  });
  const find = (id: string, kind: HopEvent["event"]): HopEvent | undefined =>
    events.find((e) => e.id === id && e.event === kind);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    child,
    events,
    warnings,
    stats: () =>
      new Promise<Stats>((resolve) => {
        statsWaiters.push(resolve);
        child.send({ type: "stats" });
      }),
    event: async (id, kind) => {
      await until(() => find(id, kind) !== undefined, `hop ${name} to report "${kind}" for ${id}`);
      return find(id, kind) as HopEvent;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      // By the pid we started: disconnecting lets it exit by itself; SIGKILL if it does not.
      child.disconnect();
      const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The hop views of one answer, outermost first. */
function views(body: HopView): HopView[] {
  const out: HopView[] = [];
  for (let v: HopView | undefined = body; v !== undefined; v = v.next as HopView | undefined) out.push(v);
  return out;
}

const r1 = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.round(n * 10) / 10);

describe("a deadline and a cancellation cross a chain of three processes A → B → C", () => {
  let a: Hop, b: Hop, c: Hop;
  let caller: Client;
  const agent = new Agent();

  beforeAll(async () => {
    // Started one after another: each needs the next one's URL.
    c = await startHop("C");
    b = await startHop("B", c.url);
    a = await startHop("A", b.url);
    caller = createClient({ service: "A", discovery: staticDiscovery([a.url]), timeout: { totalMs: 300 } });
    // Warm the chain (tsx compiling, first sockets, JIT) so the measured call is an ordinary one.
    const warm = await caller.request({ path: "/chain/warm-up", timeout: { totalMs: 20_000 } });
    expect(warm.status).toBe(200);
    await warm.dump();
  });

  afterAll(async () => {
    await caller?.close();
    await agent.close();
    await Promise.all([a, b, c].filter((h) => h !== undefined).map((h) => h.stop()));
    for (const h of [a, b, c])
      if (h !== undefined && h.warnings.length > 0) console.log(`hop ${h.name} warned:`, h.warnings);
  });

  it("A's 300 ms deadline reaches C as 300 ms less what A and B spent, with no code in the handlers", async () => {
    // The caller is a weft client with totalMs 300: A receives what is left of the 300 ms when the
    // attempt is sent (floored to whole ms), as from any weft service.
    const id = randomUUID();
    const res = await caller.request({ path: `/chain/${id}` });
    const body = await res.json<HopView>();
    expect(res.status).toBe(200);
    const [va, vb, vc] = views(body) as [HopView, HopView, HopView];
    expect([va.hop, vb.hop, vc.hop]).toEqual(["A", "B", "C"]);
    const hA = Number(va.header);
    const hB = Number(vb.header);
    const hC = Number(vc.header);

    // A got the caller's deadline; every hop got less than the one before it, and C still had some.
    expect(hA).toBeGreaterThan(0);
    expect(hA).toBeLessThanOrEqual(300);
    expect(hB).toBeLessThanOrEqual(hA);
    expect(hC).toBeLessThanOrEqual(hB);
    expect(hC).toBeGreaterThan(0);
    expect(vc.remainingAtStartMs).toBeGreaterThan(0);

    for (const [hop, header, nextHeader] of [
      [va, hA, hB],
      [vb, hB, hC],
    ] as const) {
      // Each hop's context starts at the header less the allowance (less the time it has been there).
      expect(hop.remainingAtStartMs).toBeLessThanOrEqual(header - ALLOWANCE_MS + EPSILON_MS);
      // It spent its work before calling on, and the context's clock saw it.
      expect(hop.spentBeforeCallMs).toBeGreaterThanOrEqual(MIN_WORK_MS);
      // The next hop got at most what was left when the call was made: inherited, not restarted.
      expect(nextHeader).toBeLessThanOrEqual(Math.floor((hop.remainingAtCallMs as number) + EPSILON_MS));
    }
    expect(vc.remainingAtStartMs).toBeLessThanOrEqual(hC - ALLOWANCE_MS + EPSILON_MS);
    // The claim itself: C's deadline ≤ A's less what A and B spent before calling on (and their allowances).
    const spent = (va.spentBeforeCallMs as number) + (vb.spentBeforeCallMs as number);
    expect(hC).toBeLessThanOrEqual(hA - spent - 2 * ALLOWANCE_MS + EPSILON_MS);

    console.log("deadline chain, one run:");
    console.table(
      [va, vb, vc].map((v, i) => ({
        hop: v.hop,
        "x-weft-timeout-ms received": v.header,
        "remaining at start (ms)": r1(v.remainingAtStartMs),
        "spent before calling on (ms)": r1(v.spentBeforeCallMs),
        "remaining when calling on (ms)": r1(v.remainingAtCallMs),
        "lost between hops (ms)":
          i < 2 ? r1((v.remainingAtCallMs as number) - Number([va, vb, vc][i + 1]?.header)) : undefined,
      })),
    );
    console.log(
      `C received ${hC} ms; 300 − (A spent ${r1(va.spentBeforeCallMs)} + B spent ${r1(vb.spentBeforeCallMs)}) − 2 × ${ALLOWANCE_MS} allowance = ${r1(300 - spent - 4)}`,
    );
  });

  it("cancels C's work when A's caller goes away, through B, every time", async () => {
    // Twice: the first abort in each process runs cold code; the second shows the warm path, and
    // that the chain serves again after its connections were cut.
    for (const round of ["first", "second"]) {
      const id = randomUUID();
      const controller = new AbortController();
      // A deadline far past the abort, so only the caller going away can stop C.
      const outcome = caller
        .request({ path: `/chain/${id}?slow=${SLOW_MS}`, signal: controller.signal, timeout: { totalMs: 20_000 } })
        .then(
          () => "answered",
          (error: unknown) => error,
        );
      const started = await c.event(id, "work-started");
      expect(started.remainingMs).toBeGreaterThan(SLOW_MS);
      const abortedAt = performance.timeOrigin + performance.now();
      controller.abort();
      const error = (await outcome) as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe("AbortError");

      // C's work was ended by its context's signal, because its caller (B) went away.
      const ended = await c.event(id, "work-ended");
      expect(ended).toMatchObject({ cancelled: true, code: "WEFT_ERR_REQUEST_ABORTED" });
      // Every hop saw its own caller go away: A (the test), B (A's call cancelled), C (B's).
      for (const hop of [a, b, c]) {
        expect((await hop.event(id, "aborted")).code, `hop ${hop.name}'s signal`).toBe("WEFT_ERR_REQUEST_ABORTED");
        expect((await hop.event(id, "ended")).aborted, `hop ${hop.name}'s request end`).toBe(true);
      }
      // A's and B's calls on were cancelled with their own context's reason, and got no answer.
      for (const hop of [a, b]) {
        expect((await hop.event(id, "failed")).code, `hop ${hop.name}'s call on`).toBe("WEFT_ERR_REQUEST_ABORTED");
        expect(hop.events.some((e) => e.id === id && e.event === "answered")).toBe(false);
      }
      const after = async (hop: Hop): Promise<number | undefined> =>
        r1((await hop.event(id, "aborted")).at - abortedAt);
      console.log(
        `cancellation (${round}): the caller aborted; A's signal aborted ${await after(a)} ms later, B's ${await after(b)} ms, C's ${await after(c)} ms; ` +
          `C's ${SLOW_MS} ms of work ended ${r1(ended.at - abortedAt)} ms after the abort, with ${ended.code}, ${r1(ended.remainingMs)} ms of its deadline left`,
      );
    }
  });

  it("answers an expired deadline with 504 at once, without calling on", async () => {
    const [aBefore, bBefore] = await Promise.all([a.stats(), b.stats()]);
    // A raw request: a weft client never sends a deadline of 0 (it fails the call itself instead).
    const started = performance.now();
    const res = await request(`${a.url}/chain/expired`, { dispatcher: agent, headers: { "x-weft-timeout-ms": "0" } });
    const elapsedMs = performance.now() - started;
    const body = (await res.body.json()) as { error: string; message: string };
    expect(res.statusCode).toBe(504);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(body.error).toBe("deadline_expired");
    expect(body.message).toContain("x-weft-timeout-ms");
    const [aAfter, bAfter] = await Promise.all([a.stats(), b.stats()]);
    // Refused before A's handler ran, so B was never called.
    expect(aAfter.counters.expired).toBe(aBefore.counters.expired + 1);
    expect(aAfter.handled).toBe(aBefore.handled);
    expect(bAfter.counters.requests).toBe(bBefore.counters.requests);
    expect(bAfter.handled).toBe(bBefore.handled);
    expect(a.events.some((e) => e.id === "expired")).toBe(false);
    console.log(
      `expired deadline: 504 ${JSON.stringify(body)} in ${r1(elapsedMs)} ms; B's requests ${bBefore.counters.requests} → ${bAfter.counters.requests}`,
    );
  });

  it("answers a deadline that runs out mid-chain in about the deadline, and C's work stops", async () => {
    const id = randomUUID();
    // A raw request with x-weft-timeout-ms: 150 and no timeout of the caller's own, so what
    // returns, and when, is the chain's doing alone.
    const started = performance.now();
    const res = await request(`${a.url}/chain/${id}?slow=${SLOW_MS}`, {
      dispatcher: agent,
      headers: { "x-weft-timeout-ms": "150" },
    });
    const body = (await res.body.json()) as HopView;
    const elapsedMs = performance.now() - started;
    expect(res.statusCode).toBe(504);
    // Two right answers race here, a few ms apart: C's own 504 at its deadline passed back up
    // (each hop's deadline is the allowance and a hop's transit after the next one's), or A's
    // call timing out at A's deadline first. Either way a hop says its deadline ran out.
    const chain = views(body);
    expect(chain[0]?.hop).toBe("A");
    expect(chain.at(-1)?.error).toBe("deadline_exceeded");
    expect(chain.slice(0, -1).every((v) => v.nextStatus === 504)).toBe(true);
    // The caller waited for the deadline, not for C's 8 s of work.
    expect(elapsedMs).toBeLessThan(SLOW_MS / 2);

    // C's work was stopped: by its own deadline (the chain's shortest), or by B giving up on it.
    const ended = await c.event(id, "work-ended");
    expect(ended.cancelled).toBe(true);
    expect(["WEFT_ERR_TOTAL_TIMEOUT", "WEFT_ERR_REQUEST_ABORTED"]).toContain(ended.code);
    const [arrivedA, arrivedB, arrivedC] = await Promise.all([
      a.event(id, "arrived"),
      b.event(id, "arrived"),
      c.event(id, "arrived"),
    ]);
    expect(Number(arrivedC.header)).toBeLessThan(Number(arrivedB.header));
    expect(Number(arrivedB.header)).toBeLessThan(Number(arrivedA.header));
    // Every hop's request is over, none left working.
    await Promise.all([a, b, c].map((h) => h.event(id, "ended")));
    const trace = [a, b, c].flatMap((h) =>
      h.events.filter((e) => e.id === id && e.event !== "arrived" && e.event !== "calling"),
    );
    const line = (e: HopEvent): string =>
      `${e.hop} ${e.event}${e.status === undefined ? "" : e.aborted === true ? " (its caller went away)" : ` ${e.status}`}${e.code == null ? "" : ` ${e.code}`}${e.remainingMs === undefined ? "" : ` (${r1(e.remainingMs)} ms left)`}`;
    const cArrivals = c.events.filter((e) => e.id === id && e.event === "arrived").length;
    console.log(
      `deadline mid-chain: 150 ms at A → B got ${arrivedB.header} ms → C got ${arrivedC.header} ms; the caller had ${res.statusCode} ${chain.at(-1)?.error} after ${r1(elapsedMs)} ms; ` +
        `C's ${SLOW_MS} ms of work stopped with ${ended.code} (${r1(ended.remainingMs)} ms left); C was called ${cArrivals} time(s); ` +
        `answer: ${chain.map((v) => `${v.hop}${v.error === undefined ? ` passed on ${v.nextStatus}` : ` ${v.error}`}`).join(" ← ")}\n  ${trace.map(line).join("\n  ")}`,
    );
  });
});

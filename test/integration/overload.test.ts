/**
 * Overload against real node:http servers on 127.0.0.1: `inbound({ shed })` in front of a handler
 * that awaits a simulated downstream resource with a fixed number of slots and a fixed service
 * time, queueing FIFO beyond (bench/overload-resource.ts, the overload bench's resource), offered
 * ~3× its capacity by an open-loop generator. What is asserted are correctness properties, not
 * speed (speed is bench/overload.ts): shedding happens and says so; no admitted request waits in
 * the resource's queue longer than the limit allows (that wait is the resource's virtual
 * schedule, exact whatever the timers do); a weft client resends what one replica shed to
 * another without blaming it; priorities decide who is shed.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, staticDiscovery, SHED_HEADER } from "weft";
import { inbound, type Inbound, type InboundOptions, type Priority, type ShedEvent } from "weft/server";
import { SimulatedResource } from "../../bench/overload-resource.js";

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

interface Replica {
  readonly url: string;
  readonly inbound: Inbound;
  readonly resource: SimulatedResource;
  /** Queue waits of the requests answered 200, ms (the resource's schedule). */
  readonly waits: number[];
  /** Most requests ever inside the resource at once (in a slot or queued). */
  readonly peakInResource: () => number;
  answered: number;
}

/** An inbound server whose handler awaits `resource`, answering 200 with the wait it had. */
async function replica(resource: SimulatedResource, options: Partial<InboundOptions>): Promise<Replica> {
  const ib = inbound({ service: "overload", tracing: false, metrics: false, ...options });
  let peak = 0;
  const state: Replica = { url: "", inbound: ib, resource, waits: [], peakInResource: () => peak, answered: 0 };
  const server = http.createServer(
    ib.handler(async (req, res) => {
      req.resume();
      const pending = resource.use();
      peak = Math.max(peak, resource.busy + resource.queued);
      const { waitMs } = await pending;
      state.waits.push(waitMs);
      state.answered++;
      res.writeHead(200, { "content-type": "text/plain", "x-queue-wait-ms": waitMs.toFixed(3) });
      res.end("ok");
    }),
  );
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  open.push(async () => {
    await ib.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly priority: Priority;
}

/**
 * Open loop: `rate` requests a second for `durationMs` (each `priority` drawn by `classOf(i)`),
 * every request bounded by a 2 s abort. Resolves with every answer once all have settled.
 */
async function offer(
  url: string,
  rate: number,
  durationMs: number,
  classOf: (i: number) => Priority = () => "normal",
): Promise<{ answers: Answer[]; errors: string[] }> {
  const pool = new Pool(url, { connections: 256 });
  open.push(() => pool.destroy());
  const total = Math.floor((rate * durationMs) / 1000);
  const answers: Answer[] = [];
  const errors: string[] = [];
  const calls: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total;) {
    while (i < total && start + (i * 1000) / rate <= performance.now()) {
      const priority = classOf(i++);
      const signal = AbortSignal.timeout(2_000);
      calls.push(
        pool.request({ path: "/work", method: "GET", headers: { "x-priority": priority }, signal }).then(
          async (res) =>
            void answers.push({ status: res.statusCode, headers: res.headers, body: await res.body.text(), priority }),
          (error: unknown) => void errors.push(String((error as { code?: string }).code ?? error)),
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(calls);
  return { answers, errors };
}

const SLOTS = 4;
const SERVICE_MS = 10;
/** 400 req/s. */
const CAPACITY = (SLOTS * 1000) / SERVICE_MS;

describe("3× the capacity offered to a server with shed: { limit }", () => {
  it("sheds the excess with 503, Retry-After and x-weft-shed, and no admitted request waits longer than ceil(limit / slots) service times", async () => {
    const limit = 6;
    const r = await replica(new SimulatedResource(SLOTS, SERVICE_MS), { shed: { limit } });
    const { answers, errors } = await offer(r.url, 3 * CAPACITY, 1500);

    expect(errors).toEqual([]);
    const ok = answers.filter((a) => a.status === 200);
    const shed = answers.filter((a) => a.status === 503);
    expect(ok.length + shed.length).toBe(answers.length);
    // Shedding happened, and every shed answer says what it is.
    expect(shed.length).toBeGreaterThan(answers.length / 3);
    for (const a of shed) {
      expect(a.headers[SHED_HEADER]).toBe("concurrency");
      expect(a.headers["retry-after"]).toBe("1");
      expect(JSON.parse(a.body)).toMatchObject({ error: "shed" });
    }
    expect(r.inbound.snapshot().admission).toMatchObject({
      limit,
      inflight: 0,
      shed: { normal: shed.length, low: 0, high: 0, critical: 0 },
    });
    expect(r.inbound.snapshot().counters.shed).toBe(shed.length);

    // The bound: at most `limit` requests are ever inside the resource, so one waits behind at
    // most limit − 1 others on `slots` slots.
    expect(r.peakInResource()).toBeLessThanOrEqual(limit);
    const bound = Math.ceil(limit / SLOTS) * SERVICE_MS;
    expect(r.waits.length).toBe(ok.length);
    expect(Math.max(...r.waits)).toBeLessThanOrEqual(bound);
    // What the server reported to each caller is the same wait.
    for (const a of ok) expect(Number(a.headers["x-queue-wait-ms"])).toBeLessThanOrEqual(bound);
    // It was overloaded for real: requests did queue.
    expect(Math.max(...r.waits)).toBeGreaterThan(0);
  });

  it("admits high-priority requests while shedding low ones first", async () => {
    // low may fill 80 % of the limit (8), normal 100 % (10), high 125 % (12).
    const limit = 10;
    const r = await replica(new SimulatedResource(SLOTS, SERVICE_MS), {
      shed: { limit },
      priority: (req) => (req.headers["x-priority"] as Priority | undefined) ?? "normal",
    });
    const sheds: ShedEvent[] = [];
    r.inbound.events.onShed((e) => sheds.push(e));
    // 3× capacity: 1 in 12 high (0.25× capacity), the rest low (2.75×).
    const { answers, errors } = await offer(r.url, 3 * CAPACITY, 1500, (i) => (i % 12 === 0 ? "high" : "low"));

    expect(errors).toEqual([]);
    const of = (p: Priority) => answers.filter((a) => a.priority === p);
    const admittedShare = (p: Priority) => of(p).filter((a) => a.status === 200).length / of(p).length;
    expect(of("high").length).toBeGreaterThan(50);
    // The rule, per shed: a low request is shed only once 80 % of the limit is in flight, a high
    // one only once 125 % is.
    for (const e of sheds) {
      expect(e.limit).toBe(limit);
      if (e.priority === "low") expect(e.inflight).toBeGreaterThanOrEqual(Math.floor(limit * 0.8));
      if (e.priority === "high") expect(e.inflight).toBeGreaterThanOrEqual(Math.floor(limit * 1.25));
    }
    // What it adds up to under overload: the lows take the shedding, the highs get in.
    expect(admittedShare("low")).toBeLessThan(0.5);
    expect(admittedShare("high")).toBeGreaterThan(0.9);
    const shed = r.inbound.snapshot().admission!.shed;
    expect(shed.low).toBeGreaterThan(10 * shed.high);
    expect(shed.low + shed.high).toBe(answers.filter((a) => a.status === 503).length);
  });
});

describe("a weft client calling two replicas, one of them shedding", () => {
  it("resends what the shedding replica turned away to the other: no failed call, and the shedding replica is neither broken nor ejected", async () => {
    // The small replica: 2 slots × 20 ms and a limit of 2, so it sheds whatever it is sent beyond 2 at once.
    const small = await replica(new SimulatedResource(2, 20), { shed: { limit: 2 } });
    // The big one: 64 slots × 5 ms, never full at this load.
    const big = await replica(new SimulatedResource(64, 5), { shed: { limit: 1000 } });
    // This test is about where resends of shed requests go and what they do to the shedding
    // replica's standing, not about how many the retry budget allows (the storm bench is): how
    // many the small replica sheds depends on how p2cEwma's picks interleave with its two slots
    // (15 to 367 of 600 calls over seven runs here), which the default budget's reserve of 100
    // + 20 % cannot always cover. So the budget here is sized to cover them all: ratio 1.
    const client = createClient({
      service: "overload",
      discovery: staticDiscovery([small.url, big.url]),
      timeout: { totalMs: 5_000 },
      retry: { budget: { ratio: 1 } },
    });
    open.push(() => client.close());

    const calls = 600;
    let next = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < calls) {
        next++;
        try {
          const res = await client.request({ path: "/work" });
          await res.text();
          if (res.status !== 200) failures.push(`status ${res.status}`);
        } catch (error) {
          failures.push(String((error as { code?: string }).code ?? error));
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));

    expect(failures).toEqual([]);
    const shedBySmall = small.inbound.snapshot().counters.shed;
    expect(shedBySmall).toBeGreaterThan(0);
    expect(big.inbound.snapshot().counters.shed).toBe(0);
    // Every call was answered once, by one of the two; each shed request was sent once more, to the big one.
    expect(small.answered + big.answered).toBe(calls);
    const snapshot = client.snapshot();
    expect(snapshot.counters).toMatchObject({ calls, successes: calls, failures: 0 });
    expect(snapshot.counters.attempts).toBe(calls + shedBySmall);
    const shedding = snapshot.endpoints.find((e) => e.url === small.url)!;
    expect(shedding).toMatchObject({
      breaker: "closed",
      state: "healthy",
      ejections: 0,
      ejectedForMs: null,
      failures: 0,
    });
    expect(snapshot.outlier?.ejected ?? 0).toBe(0);
  });
});

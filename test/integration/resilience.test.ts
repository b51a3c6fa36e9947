/**
 * Resilience against real servers on loopback: replicas killed mid-run, POSTs that must not be
 * sent twice, Retry-After, a total outage under the retry budget, and hedges that get cancelled.
 */
import { describe, expect, it } from "vitest";
import { createClient, staticDiscovery, type Client, type ClientOptions } from "weft";
import { startReplica, type Replica } from "../helpers/replicas.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { refusedPort } from "../helpers/server.js";

function client(urls: string[], options: Partial<ClientOptions> = {}): Client {
  const c = createClient({ service: "resilience", discovery: staticDiscovery(urls), ...options });
  scoped(c);
  return c;
}

describe("a replica killed in the middle of the traffic", () => {
  it("costs zero failed calls out of 2,000 GETs", async () => {
    const replicas: Replica[] = await Promise.all([startReplica(), startReplica(), startReplica()]);
    defer(() => Promise.all(replicas.map((r) => r.stop())));
    const c = client(
      replicas.map((r) => r.url),
      { timeout: { attemptMs: 1000, totalMs: 5000 } },
    );
    let done = 0;
    let failed = 0;
    const errors = new Map<string, number>();
    const total = 2000;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++;
        if (next === 500) void replicas[1]?.process.kill("SIGKILL");
        try {
          const res = await c.request({ path: "/" });
          await res.text();
          if (res.status !== 200) failed++;
        } catch (error) {
          failed++;
          const code = (error as { code?: string }).code ?? String(error);
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
        done++;
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(done).toBe(total);
    expect(Object.fromEntries(errors)).toEqual({});
    expect(failed).toBe(0);
    expect(replicas[1]?.process.signalCode).toBe("SIGKILL");
    // Some calls did need a second attempt.
    expect(c.snapshot().counters.attempts).toBeGreaterThan(total);
  });
});

describe("requests that must not be sent twice", () => {
  it("does not retry a POST that reached a server answering 503", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const other = await server();
    const res = await client([s.url, other.url]).request({ method: "POST", path: "/orders", body: "{}" });
    // Whichever replica got it, the POST reached exactly one server once.
    expect(s.received.length + other.received.length).toBe(1);
    if (s.received.length === 1) expect(res.status).toBe(503);
  });

  it("retries a POST to a port that refuses connections on a live replica, which sees it once", async () => {
    const dead = await refusedPort();
    const live = await server();
    const c = client([`http://127.0.0.1:${dead}`, live.url]);
    for (let i = 0; i < 10; i++) {
      const res = await c.request({ method: "POST", path: `/orders/${i}`, body: `order ${i}` });
      expect(res.status).toBe(200);
      await res.text();
    }
    expect(live.received.map((r) => r.url)).toEqual(Array.from({ length: 10 }, (_, i) => `/orders/${i}`));
  });
});

describe("Retry-After", () => {
  it("waits as long as the server asks before resending", async () => {
    const arrivals: number[] = [];
    const s = await server((_req, res) => {
      arrivals.push(performance.now());
      if (arrivals.length === 1) {
        res.statusCode = 503;
        res.setHeader("retry-after", "1");
      }
      res.end();
    });
    const res = await client([s.url], { timeout: { totalMs: 5000 } }).request({ path: "/" });
    expect(res.status).toBe(200);
    expect(arrivals).toHaveLength(2);
    expect((arrivals[1] as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(950);
  });

  it("answers at once with the 503 when Retry-After is beyond the deadline", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.setHeader("retry-after", "30");
      res.end("come back later");
    });
    const res = await client([s.url], { timeout: { totalMs: 2000 } }).request({ path: "/" });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("come back later");
    expect(s.received).toHaveLength(1);
  });
});

describe("a total outage", () => {
  it("keeps the attempts servers receive within the retry budget's bound", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    // Breakers off: this measures the budget alone (with breakers, even fewer attempts go out).
    const c = client([s.url], { retry: { maxAttempts: 3, backoff: { baseMs: 0, maxMs: 0 } }, breaker: false });
    const calls = 600;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls) {
        next++;
        await (await c.request({ path: "/" })).text();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Budget: 20 % of calls plus a floor of 10/s over 10 s (100 retries); naive retries: 3 × calls.
    const bound = calls * 1.2 + 100;
    expect(s.received.length).toBeLessThanOrEqual(bound);
    expect(s.received.length).toBeGreaterThan(calls);
  });
});

describe("per-endpoint breakers", () => {
  it("open on a failing replica, fail fast when every endpoint is open, and report it", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const c = client([s.url], { retry: false, breaker: { volumeThreshold: 5, resetTimeoutMs: 60_000 } });
    const changes: string[] = [];
    c.events.onBreakerStateChange((e) => changes.push(`${e.from}->${e.to}`));
    for (let i = 0; i < 5; i++) await (await c.request({ path: "/" })).text();
    expect(changes).toEqual(["closed->open"]);
    expect(c.snapshot().endpoints[0]?.breaker).toBe("open");
    const error = (await c.request({ path: "/" }).catch((e: unknown) => e)) as { code?: string };
    expect(error.code).toBe("WEFT_ERR_BREAKER_OPEN");
    expect(s.received).toHaveLength(5);
    // With retries on, it still fails at once: there is nothing to resend to, and no budget is spent.
    const withRetries = scoped(
      createClient({
        service: "open",
        discovery: staticDiscovery([s.url]),
        breaker: { volumeThreshold: 5, resetTimeoutMs: 60_000 },
        outlier: false,
      }),
    );
    for (let i = 0; i < 5; i++) await (await withRetries.request({ method: "POST", path: "/", body: "x" })).text();
    const budgetBefore = withRetries.snapshot().retryBudget;
    const fast = (await withRetries.request({ path: "/" }).catch((e: unknown) => e)) as { code?: string };
    expect(fast.code).toBe("WEFT_ERR_BREAKER_OPEN");
    // The call deposited its 0.2 of a token and withdrew none.
    expect(withRetries.snapshot().retryBudget).toBeCloseTo((budgetBefore ?? 0) + 0.2, 6);
  });

  it("with the balancer's failure penalty, keep a failing replica's share small", async () => {
    const bad = await server((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const good = await server();
    const c = client([bad.url, good.url], { retry: false, breaker: { volumeThreshold: 3, resetTimeoutMs: 60_000 } });
    for (let i = 0; i < 60; i++) await (await c.request({ path: "/" })).text();
    // Either the load penalty or the breaker (after 3 failures) keeps it out of the rotation.
    expect(bad.received.length).toBeLessThanOrEqual(10);
    expect(good.received.length).toBeGreaterThanOrEqual(50);
  });
});

describe("hedging against real servers", () => {
  it("cancels the losing attempt: the slow server sees the abort", async () => {
    let first = true;
    const handler = (_req: unknown, res: import("node:http").ServerResponse): void => {
      if (first) {
        first = false;
        return; // never answers
      }
      res.end("fast");
    };
    const a = await server(handler);
    const b = await server(handler);
    const c = client([a.url, b.url], { hedge: { delayMs: 50 } });
    const res = await c.request({ path: "/" });
    expect(await res.text()).toBe("fast");
    await expect.poll(() => a.aborted + b.aborted).toBe(1);
    expect(a.received.length + b.received.length).toBe(2);
  });

  it("never hedges a POST", async () => {
    const s = await server((_req, res) => void setTimeout(() => res.end("slow"), 300));
    const other = await server((_req, res) => void setTimeout(() => res.end("slow"), 300));
    const res = await client([s.url, other.url], { hedge: { delayMs: 20 } }).request({
      method: "POST",
      path: "/",
      body: "x",
    });
    expect(await res.text()).toBe("slow");
    expect(s.received.length + other.received.length).toBe(1);
  });
});

/**
 * `policy()` around a call that is not HTTP: a line protocol over a real TCP socket on loopback
 * (as a database or cache client speaks), against a server that resets connections, stalls or
 * answers. The function opens its socket and destroys it when its signal aborts, as a driver does.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { ErrorCodes, policy, type Policy, type PolicyOptions, type WeftError } from "weft";
import { defer } from "../helpers/scope.js";
import { runScript } from "../helpers/script.js";
import { rejection } from "../helpers/rejection.js";

type Mode = "answer" | "reset" | "stall";

/** A line server: `GET key` → `VALUE key 42`; or it resets, or it never answers. */
interface LineServer {
  readonly port: number;
  mode: Mode;
  /** Connections accepted, and those the client closed (or reset) before the server did. */
  connections: number;
  closedByClient: number;
}

async function lineServer(mode: Mode): Promise<LineServer> {
  const state = { port: 0, mode, connections: 0, closedByClient: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    let answered = false;
    socket.on("close", () => {
      sockets.delete(socket);
      if (!answered && state.mode === "stall") state.closedByClient++;
    });
    socket.on("error", () => {});
    if (state.mode === "reset") return void socket.resetAndDestroy();
    socket.setEncoding("utf8");
    socket.on("data", (line: string) => {
      if (state.mode !== "answer") return;
      answered = true;
      socket.end(`VALUE ${line.trim().split(" ")[1] ?? ""} 42\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as AddressInfo).port;
  defer(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return state;
}

/** The client side: one query on a fresh connection, cancelled by destroying the socket. */
function query(port: number, line: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    const onAbort = (): void => void socket.destroy(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: string) => {
      data += chunk;
      const end = data.indexOf("\n");
      if (end !== -1) resolve(data.slice(0, end));
    });
    socket.on("error", reject);
    socket.on("close", () => {
      signal.removeEventListener("abort", onAbort);
      reject(new Error("connection closed before an answer"));
    });
  });
}

function make(options: PolicyOptions): Policy {
  const p = policy({ name: "kv", ...options });
  defer(() => p.close());
  return p;
}

describe("policy() around a TCP line protocol", () => {
  it("retries through connection resets until the server answers, and returns the answer", async () => {
    const s = await lineServer("reset");
    const p = make({ retry: { maxAttempts: 4, backoff: { baseMs: 5, maxMs: 5 } } });
    const reasons: string[] = [];
    p.events.onRetry((e) => {
      reasons.push(e.reason);
      if (reasons.length === 2) s.mode = "answer";
    });
    const answer = await p.execute((signal) => query(s.port, "GET sku-1", signal));
    expect(answer).toBe("VALUE sku-1 42");
    expect(reasons).toEqual(["ECONNRESET", "ECONNRESET"]);
    expect(s.connections).toBe(3);
    expect(p.snapshot().counters).toMatchObject({ calls: 1, successes: 1, attempts: 3 });
  });

  it("closes a stalled query's socket at each attempt timeout, and gives up at the total deadline", async () => {
    const s = await lineServer("stall");
    const p = make({
      timeout: { attemptMs: 100, totalMs: 350 },
      retry: { maxAttempts: 10, backoff: { baseMs: 1, maxMs: 1 } },
    });
    const started = performance.now();
    const error = await rejection<WeftError>(p.execute((signal) => query(s.port, "GET sku-2", signal)));
    const tookMs = performance.now() - started;
    expect(error.code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect(tookMs).toBeGreaterThanOrEqual(340);
    expect(tookMs).toBeLessThan(1000);
    // Three or four runs, each cut off by its timeout: the server saw every one of them hang up.
    expect(s.connections).toBeGreaterThanOrEqual(3);
    await expect.poll(() => s.closedByClient).toBe(s.connections);
    expect(p.snapshot().counters).toMatchObject({ failures: 1, timeouts: 1, inflight: 0 });
  });

  it("closes the socket when the caller aborts, and rejects with the caller's reason", async () => {
    const s = await lineServer("stall");
    const p = make({ retry: {} });
    const controller = new AbortController();
    const pending = rejection<WeftError>(
      p.execute((signal) => query(s.port, "GET sku-3", signal), { signal: controller.signal }),
    );
    await expect.poll(() => s.connections).toBe(1);
    const reason = new Error("request cancelled by the user");
    controller.abort(reason);
    expect(await pending).toBe(reason);
    await expect.poll(() => s.closedByClient).toBe(1);
    expect(p.snapshot().counters).toMatchObject({ ignorable: 1, failures: 0, attempts: 1 });
  });

  it("opens its breaker on a failing server, stops connecting, and closes it when a probe succeeds", async () => {
    const s = await lineServer("reset");
    const p = make({ breaker: { volumeThreshold: 3, resetTimeoutMs: 150 } });
    const states: string[] = [];
    const halfOpen = new Promise<void>((resolve) =>
      p.events.onBreakerStateChange((e) => {
        states.push(e.to);
        if (e.to === "halfOpen") resolve();
      }),
    );
    for (let i = 0; i < 3; i++) await rejection<WeftError>(p.execute((signal) => query(s.port, "GET sku-4", signal)));
    expect(states).toEqual(["open"]);
    const refused = await rejection<WeftError>(p.execute((signal) => query(s.port, "GET sku-4", signal)));
    expect(refused.code).toBe(ErrorCodes.BREAKER_OPEN);
    expect(s.connections).toBe(3);
    s.mode = "answer";
    await halfOpen;
    expect(await p.execute((signal) => query(s.port, "GET sku-4", signal))).toBe("VALUE sku-4 42");
    expect(states).toEqual(["open", "halfOpen", "closed"]);
    expect(p.snapshot().breaker?.state).toBe("closed");
  });
});

describe("policy() and the process", () => {
  it("keeps a script alive while a call waits on weft's own timers, and lets it exit once they settle", async () => {
    // A healthy run exits in about a second.
    const { code, signal, stdout, stderr } = await runScript(["test/fixtures/policy-lifetime.ts"]);
    expect(stderr).toBe("");
    expect(signal).toBeNull();
    // 13 would be a top-level await left pending: the process exited in the middle of a wait.
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      retried: "ok",
      tokenWait: "waited",
      stuck: "WEFT_ERR_TOTAL_TIMEOUT",
      alive: [],
    });
  });
});

/**
 * `policy()` around a call that is not HTTP, runnable: `npx tsx examples/policy/main.ts`.
 *
 * An "inventory" server speaks a line protocol over TCP on loopback (`STOCK sku` → `sku 42`), as
 * a cache or database does, and misbehaves on cue: it resets a connection, stalls, goes down for
 * a while, comes back. The caller wraps each query in one weft policy — a per-run timeout, a total
 * deadline, retries with a budget, a breaker — and prints what happened. It exits by itself.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { isWeftError, policy } from "weft";

type Behaviour = "answer" | "reset" | "stall";

/** The server: each new connection takes the next scripted behaviour (then `fallback`). */
const script: Behaviour[] = [];
let fallback: Behaviour = "answer";
const sockets = new Set<net.Socket>();
let connections = 0;
const server = net.createServer((socket) => {
  connections++;
  sockets.add(socket);
  socket.on("close", () => sockets.delete(socket));
  socket.on("error", () => {});
  const behaviour = script.shift() ?? fallback;
  if (behaviour === "reset") return void socket.resetAndDestroy();
  if (behaviour === "stall") return; // accepts, reads, never answers
  socket.setEncoding("utf8");
  socket.on("data", (line: string) => socket.end(`${line.trim().split(" ")[1] ?? "?"} 42\n`));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as AddressInfo).port;

/** The client: one query on a fresh connection; the socket is destroyed when `signal` aborts. */
function stock(sku: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    const onAbort = (): void => void socket.destroy(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`STOCK ${sku}\n`));
    socket.on("data", (line: string) => resolve(Number(line.trim().split(" ")[1])));
    socket.on("error", reject);
    socket.on("close", () => {
      signal.removeEventListener("abort", onAbort);
      reject(new Error("connection closed before an answer"));
    });
  });
}

const inventory = policy({
  name: "inventory",
  timeout: { attemptMs: 200, totalMs: 1000 },
  retry: { maxAttempts: 3, backoff: { baseMs: 20, maxMs: 50 } },
  breaker: { volumeThreshold: 8, errorThresholdPercentage: 50, resetTimeoutMs: 500 },
});
inventory.events.onTimeout((e) => console.log(`  ${e.kind} timeout after ${e.timeoutMs} ms: the socket is closed`));
inventory.events.onRetry((e) =>
  console.log(`  retry #${e.attempt} after ${e.reason}, waiting ${e.delayMs.toFixed(1)} ms`),
);
inventory.events.onBreakerStateChange((e) => console.log(`  breaker ${e.from} → ${e.to}`));

async function ask(sku: string): Promise<void> {
  const started = performance.now();
  const before = connections;
  const ms = (): string => `${(performance.now() - started).toFixed(1)} ms, ${connections - before} connection(s)`;
  try {
    const count = await inventory.execute((signal) => stock(sku, signal));
    console.log(`${sku}: ${count} in stock (${ms()})`);
  } catch (error) {
    if (!isWeftError(error)) throw error;
    const cause = (error.cause as { code?: string } | undefined)?.code;
    console.log(`${sku}: ${error.code}${cause === undefined ? "" : `, last: ${cause}`} (${ms()})`);
  }
}

console.log("a connection reset: retried");
script.push("reset");
await ask("sku-1");

console.log("a stalled server: the run times out, its socket is closed, the retry answers");
script.push("stall");
await ask("sku-2");

console.log("an outage: every connection is reset; each call gives up after 3 runs");
fallback = "reset";
await ask("sku-3");
console.log("more than half of the last 8 runs failed: the breaker opens, the call's retries are refused");
await ask("sku-4");
console.log("while it is open, calls fail at once and no connection is made");
await ask("sku-5");

console.log("the server is back; after the breaker's 500 ms a probe closes it");
fallback = "answer";
await new Promise<void>((resolve) => {
  const stop = inventory.events.onBreakerStateChange((e) => {
    if (e.to === "halfOpen") resolve(stop());
  });
});
await ask("sku-6");

const { counters, breaker, stats } = inventory.snapshot();
console.log(
  `snapshot: ${counters.calls} calls, ${counters.successes} ok, ${counters.failures} failed, ` +
    `${counters.attempts} runs, ${counters.timeouts} timed out; breaker ${breaker?.state}; ` +
    `p99 ${stats.window.latencyMs?.p99.toFixed(0) ?? "—"} ms`,
);
await inventory.close();
for (const socket of sockets) socket.destroy();
server.close();

/**
 * One replica of the demo service, run in its own process so that a slow replica's timers and a
 * busy event loop never slow the client being measured. Usage: `replica.ts <behaviour>`.
 *
 * - healthy: answers 200 in 1–3 ms;
 * - slow:    like healthy, but 10 % of answers take 1 s (a GC pause, a cold cache, a noisy neighbour);
 * - flaky:   like healthy, but 30 % of answers are a fast 503 (an overloaded or half-broken replica).
 *
 * It serves through `weft/server`'s `inbound()`, as every service of a weft mesh does: the
 * caller's deadline (`x-weft-timeout-ms`) is read, so a slow answer whose caller has already given
 * up is not worked on; `/healthz` and `/readyz` answer; and a request whose caller went away (a
 * hedge that lost) stops its timer instead of answering nobody.
 *
 * It reports its port to the parent over IPC and exits when the parent goes away, so it cannot
 * outlive the demo even if the demo is killed with SIGKILL.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { inbound, inboundContext } from "weft/server";

export type Behaviour = "healthy" | "slow" | "flaky";

const BASE_MIN_MS = 1;
const BASE_SPREAD_MS = 2;
const SLOW_SHARE = 0.1;
const SLOW_DELAY_MS = 1_000;
const FLAKY_SHARE = 0.3;

const behaviour = process.argv[2] as Behaviour | undefined;
if (behaviour !== "healthy" && behaviour !== "slow" && behaviour !== "flaky") {
  console.error(`replica: expected "healthy", "slow" or "flaky", got ${JSON.stringify(behaviour)}`);
  process.exit(2);
}

function reply(res: ServerResponse, status: number, delayMs: number): void {
  const body = JSON.stringify({ replica: behaviour, status });
  const timer = setTimeout(() => {
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }, delayMs);
  // The caller gave up (a lost hedge, a timeout): stop the work nobody waits for.
  inboundContext()?.cancel.addEventListener("abort", () => clearTimeout(timer));
}

const service = inbound({ service: `demo-${behaviour}` });
const server = createServer(
  service.handler((req, res) => {
    // Drain the (empty) request body so the keep-alive connection can be reused.
    req.resume();
    const baseMs = BASE_MIN_MS + Math.random() * BASE_SPREAD_MS;
    if (behaviour === "flaky" && Math.random() < FLAKY_SHARE) return reply(res, 503, 0);
    if (behaviour === "slow" && Math.random() < SLOW_SHARE) return reply(res, 200, SLOW_DELAY_MS);
    reply(res, 200, baseMs);
  }),
);

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  if (process.send === undefined) console.log(`replica ${behaviour} listening on http://127.0.0.1:${port}`);
  else process.send({ port });
});

// The IPC channel closes when the parent exits, however it exits.
process.on("disconnect", () => process.exit(0));

/**
 * A graceful stop that costs the callers nothing, in the order that makes it so:
 *
 * 1. **Readiness fails** (`/readyz` → 503) and every response from now on says
 *    `Connection: close`, so keep-alive connections end after their current request instead of
 *    carrying new ones here.
 * 2. **Registrations are revoked** (`drain.deregister`, e.g. `etcdRegistration` handles): callers
 *    watching etcd drop this instance within milliseconds.
 * 3. **Keep serving for `delayMs`**: requests callers sent before they saw the change still
 *    arrive, and are served.
 * 4. **Stop accepting** (`server.close()`), close the connections that are idle now and each one
 *    that goes idle later: nothing new can start here.
 * 5. **Wait for the requests in flight**, at most `graceMs`; whatever is left then is cut
 *    (`closeAllConnections`) and counted as forced.
 *
 * Kubernetes runs the same dance with a preStop sleep; etcd-registered services get step 2 for
 * free, which is why a weft drain can be short.
 */
import type { Server } from "node:http";
import type { Clock } from "../core/clock.js";

export interface DrainResult {
  /** Requests in flight when the drain began. */
  readonly inflightAtStart: number;
  /** Requests still running when the grace ran out (their connections were cut). */
  readonly forced: number;
  /** How long the drain took, ms. */
  readonly durationMs: number;
}

export interface DrainTarget {
  readonly clock: Clock;
  readonly graceMs: number;
  readonly delayMs: number;
  readonly deregister: readonly { close(): Promise<unknown> | unknown }[];
  readonly servers: ReadonlySet<Server>;
  inflight(): number;
  /** Resolves when no request is in flight (at once when none is). */
  idle(): Promise<void>;
  /** Phase changes, for events: readiness already fails when this is first called. */
  phase(phase: "draining" | "closing" | "closed"): void;
  warn(message: string): void;
}

export async function runDrain(target: DrainTarget): Promise<DrainResult> {
  const { clock } = target;
  const started = clock.now();
  const inflightAtStart = target.inflight();
  target.phase("draining");
  const revoked = await Promise.allSettled(target.deregister.map(async (r) => r.close()));
  for (const result of revoked) {
    if (result.status === "rejected")
      target.warn(`weft/server: revoking a registration while draining failed: ${String(result.reason)}`);
  }
  if (target.delayMs > 0) await sleep(clock, target.delayMs);
  target.phase("closing");
  const closed = [...target.servers].map(
    (server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  );
  const leftMs = Math.max(0, target.graceMs - (clock.now() - started - target.delayMs));
  const finished = await Promise.race([target.idle().then(() => true), sleep(clock, leftMs).then(() => false)]);
  const forced = finished ? 0 : target.inflight();
  if (!finished) {
    target.warn(
      `weft/server: ${forced} request(s) still running after the ${target.graceMs} ms drain grace; cutting their connections`,
    );
  }
  // Idle keep-alive connections would hold close() open until their timeout: close them (and the
  // forced ones) now; nothing is in flight on them any more.
  for (const server of target.servers) {
    if (finished) server.closeIdleConnections();
    else server.closeAllConnections();
  }
  // A connection still finishing its last response closes by itself; one that does not within a
  // second (a request that slipped in on it after the server closed) is cut too.
  const allClosed = Promise.all(closed).then(() => true);
  if (!(await Promise.race([allClosed, sleep(clock, 1000).then(() => false)]))) {
    for (const server of target.servers) server.closeAllConnections();
    await allClosed;
  }
  // A cut request's response emits `close` (which ends it: counters, span, metrics, the
  // cancellation of its outbound calls) only once its socket's handle has closed — a loop turn
  // after the server's own `close`, because net counts a destroyed socket out at once. Wait for
  // those ends (briefly) so that the result, the "closed" phase and a signal's exit come after them.
  if (target.inflight() > 0) await Promise.race([target.idle(), sleep(clock, 1000)]);
  target.phase("closed");
  return { inflightAtStart, forced, durationMs: clock.now() - started };
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}

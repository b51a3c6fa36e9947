/**
 * HTTP/2 keep-alive (dead-peer detection) end to end: real `node:http2` servers on 127.0.0.1,
 * port 0, a real weft client with `http2Transport({ keepAlive })`.
 *
 * What it has to show: a replica frozen with SIGSTOP (its own process: the kernel still holds its
 * sockets, nothing answers) while calls ride its session is found out by an unanswered PING within
 * a bounded time — not at the calls' deadline —, the idempotent call in flight is resent to the
 * other replica and succeeds, the POST in flight fails without being resent, and later calls go
 * to new sessions; a session receiving frames is never PINGed, a silent one with a stream open is
 * (and lives while its peer answers), an idle one is not (and still closes at `idleTimeoutMs`);
 * bad options fail at construction.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import {
  createClient,
  http2Transport,
  staticDiscovery,
  type Balancer,
  type Client,
  type Http2TransportOptions,
} from "weft";
import { defer } from "../helpers/scope.js";
import { until } from "../helpers/until.js";
import { invalidOptionsError } from "../helpers/options.js";
import { forkReplica, type Replica } from "../helpers/replicas.js";

interface StreamSeen {
  readonly path: string;
  readonly method: string;
  /** Which of the replica's sessions (1, 2, …) carried it. */
  readonly session: number;
}

interface H2Replica extends Replica {
  readonly pid: number;
  readonly streams: StreamSeen[];
}

/** An h2c replica in a child process of its own (test/fixtures/h2-replica.ts), stopped by its pid after the test. */
async function replica(options: { hold: boolean }): Promise<H2Replica> {
  const started = await forkReplica("test/fixtures/h2-replica.ts", { H2_HOLD: options.hold ? "1" : "0" });
  defer(() => started.stop());
  const streams: StreamSeen[] = [];
  started.process.on("message", (m: { stream?: StreamSeen }) => {
    if (m.stream !== undefined) streams.push(m.stream);
  });
  return { ...started, pid: started.process.pid as number, streams };
}

/** First attempts go to `url` (while it is in the set); a resend, which the balance layer offers the endpoints not tried yet, to the first of those. */
function preferring(url: string): Balancer {
  return {
    name: "preferring",
    create: () => ({ pick: (ready) => ready.find((e) => e.url === url) ?? ready[0]! }),
  };
}

function client(urls: string[], transport: Http2TransportOptions, balancer?: Balancer): Client {
  const c = createClient({
    service: "h2-keepalive",
    discovery: staticDiscovery(urls),
    transport: http2Transport(transport),
    // Far beyond what the keep-alive takes here: a call that ends early was ended by it.
    timeout: { totalMs: 30_000 },
    ...(balancer === undefined ? {} : { balancer }),
  });
  defer(() => c.close());
  return c;
}

/** `error`, or the error in its `cause` chain, whose `code` is `code`. */
function withCode(error: unknown, code: string): Error | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; depth++) {
    if ((e as { code?: unknown }).code === code) return e;
    e = e.cause;
  }
  return undefined;
}

describe("keep-alive: a frozen peer (SIGSTOP) is found out by an unanswered PING", () => {
  it("drops the session within interval + timeout: the GET in flight is resent to the other replica, the POST in flight fails and is not resent, later calls use new sessions", async () => {
    const frozen = await replica({ hold: true });
    const other = await replica({ hold: false });
    const c = client(
      [frozen.url, other.url],
      { keepAlive: { intervalMs: 100, timeoutMs: 200 } },
      preferring(frozen.url),
    );

    // One session to the replica about to freeze, carrying a GET and a POST it has read.
    expect(await (await c.request({ path: "/who" })).text()).toBe(`GET /who from ${frozen.pid}`);
    const get = c.request({ path: "/hold" });
    const post = c.request({ method: "POST", path: "/hold", body: "order-1" });
    const postOutcome = post.then(
      () => "answered",
      (error: unknown) => error,
    );
    await until(() => frozen.streams.filter((s) => s.path === "/hold").length === 2, "both calls at the replica");
    expect(new Set(frozen.streams.map((s) => s.session))).toEqual(new Set([1]));

    frozen.process.kill("SIGSTOP");
    const stoppedAt = performance.now();

    // The GET is idempotent: resent to the other replica, and answered there.
    const res = await get;
    expect(await res.text()).toBe(`GET /hold from ${other.pid}`);
    // The POST may have been processed: it fails with the keep-alive's error and is not resent.
    const error = await postOutcome;
    const detectedMs = performance.now() - stoppedAt;
    const ping = withCode(error, "ERR_HTTP2_PING_TIMEOUT");
    expect(ping?.message).toBe(
      `HTTP/2 session to ${frozen.url} did not answer a PING within 200 ms and sent nothing else: the peer is presumed gone (its streams may have been processed)`,
    );
    expect(other.streams.filter((s) => s.method === "POST")).toEqual([]);
    // Bounded by the keep-alive (at most 2 × 100 ms of silence + 200 ms, plus a loaded machine's
    // slack), far below the 30 s deadline the calls would otherwise have waited for.
    expect(detectedMs).toBeLessThan(5_000);

    // Still frozen, its kernel accepts a new connection that never answers: the keep-alive drops
    // that session too, and the call goes to the other replica.
    expect(await (await c.request({ path: "/who" })).text()).toBe(`GET /who from ${other.pid}`);

    // The snapshot counts the sessions the keep-alive dropped.
    const frozenRow = c.snapshot().endpoints.find((e) => e.url === frozen.url);
    expect(frozenRow?.connections?.deadSessions).toBe(2);

    // Thawed: the next call opens a new session to it, and is answered there.
    frozen.process.kill("SIGCONT");
    expect(await (await c.request({ path: "/who" })).text()).toBe(`GET /who from ${frozen.pid}`);
    const last = frozen.streams.at(-1);
    expect(last?.path).toBe("/who");
    expect(last?.session).toBeGreaterThan(1);
  });
});

/** A `node:http2` server in this process that counts the PINGs it receives; closed after the test. */
async function pingCountingServer(onStream: (stream: http2.ServerHttp2Stream) => void) {
  const state = { url: "", pings: 0, sessions: 0, sessionsClosed: 0 };
  const server = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  server.on("session", (session) => {
    sessions.push(session);
    state.sessions++;
    session.on("ping", () => state.pings++);
    session.on("error", () => {});
    session.on("close", () => state.sessionsClosed++);
  });
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.resume();
    onStream(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  defer(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

describe("keep-alive: when PINGs are sent", () => {
  it("never PINGs a session while frames arrive; PINGs it once it falls silent with a stream open, and keeps it while the peer answers", async () => {
    let streaming = true;
    let held: http2.ServerHttp2Stream | undefined;
    const s = await pingCountingServer((stream) => {
      held = stream;
      stream.respond({ ":status": 200 });
      // A chunk every 20 ms for 1.5 s: three intervals of 500 ms, none of them silent.
      let sent = 0;
      const timer = setInterval(() => {
        stream.write(`chunk ${sent}\n`);
        if (++sent === 75) {
          clearInterval(timer);
          streaming = false;
        }
      }, 20);
      stream.on("close", () => clearInterval(timer));
    });
    const c = client([s.url], { keepAlive: { intervalMs: 500, timeoutMs: 5_000 } });
    const res = await c.request({ path: "/stream" });
    const body = res.text();
    await until(() => !streaming, "the server to stop streaming", 20_000);
    expect(s.pings).toBe(0);
    // Silent now, with the stream still open: PINGed (twice: the first one was answered).
    await until(() => s.pings >= 2, "PINGs on the silent session");
    // The answered PING's round trip, and the one stream open, in the snapshot.
    expect(c.snapshot().endpoints[0]?.connections).toMatchObject({ open: 1, active: 1, queued: 0, deadSessions: 0 });
    expect(c.snapshot().endpoints[0]?.connections?.pingRttMs).toBeGreaterThanOrEqual(0);
    held!.end("done\n");
    const text = await body;
    expect(text.split("\n").filter((line) => line.startsWith("chunk"))).toHaveLength(75);
    expect(text.endsWith("done\n")).toBe(true);
    expect(s.sessions).toBe(1);
    expect(s.sessionsClosed).toBe(0);
  });

  it("never PINGs an idle session (no stream open), which still closes at idleTimeoutMs", async () => {
    const s = await pingCountingServer((stream) => {
      stream.respond({ ":status": 200 });
      stream.end("ok");
    });
    const c = client([s.url], { keepAlive: { intervalMs: 50, timeoutMs: 1_000 }, idleTimeoutMs: 600 });
    expect(await (await c.request({ path: "/" })).text()).toBe("ok");
    // Twelve intervals of idleness, then the idle timeout closes the session.
    await until(() => s.sessionsClosed === 1, "the idle session to close");
    expect(s.pings).toBe(0);
  });
});

describe("keep-alive options", () => {
  it("fails bad options at construction, naming the option, the value and what is allowed", () => {
    const message = (options: unknown): string =>
      invalidOptionsError(() => http2Transport(options as Http2TransportOptions)).message;
    expect(message({ keepAlive: true })).toBe(
      "invalid option transport.keepAlive: got true; expected { intervalMs?, timeoutMs? } or false (off)",
    );
    expect(message({ keepAlive: { intervalMs: 0 } })).toBe(
      "invalid option transport.keepAlive.intervalMs: got 0; expected a positive number of milliseconds",
    );
    expect(message({ keepAlive: { timeoutMs: Infinity } })).toBe(
      "invalid option transport.keepAlive.timeoutMs: got Infinity; expected a positive number of milliseconds",
    );
    expect(message({ keepAlive: { intervalMs: false } })).toBe(
      "invalid option transport.keepAlive.intervalMs: got false; expected a positive number of milliseconds",
    );
    expect(message({ keepAlive: { interval: 5_000 } })).toMatch(
      /^unknown option transport\.keepAlive\.interval \(did you mean transport\.keepAlive\.intervalMs\?\)/,
    );
    expect(message({ keepAlve: false })).toMatch(
      /^unknown option transport\.keepAlve \(did you mean transport\.keepAlive\?\)/,
    );
    expect(() => http2Transport({ keepAlive: false })).not.toThrow();
    expect(() => http2Transport({ keepAlive: {} })).not.toThrow();
    expect(() => http2Transport({ keepAlive: { intervalMs: 30_000, timeoutMs: 10_000 } })).not.toThrow();
  });
});

/**
 * The HTTP/2 transport end to end: real `node:http2` servers on 127.0.0.1 (h2c with prior
 * knowledge, and TLS with ALPN and certificates made by openssl), a real weft client on top.
 *
 * What it has to show: requests and answers as over HTTP/1.1 (methods, bodies, headers,
 * statuses, bodies read whole or streamed, backpressure); many concurrent calls on ONE connection,
 * and a second session only past the server's SETTINGS_MAX_CONCURRENT_STREAMS; cancellation (a
 * hedge that lost, a caller's abort, a per-try timeout) resets one stream and leaves the connection
 * open — counted at the server; GOAWAY under load fails no call and runs no POST twice; TLS with
 * ALPN h2, a SPIFFE identity, mTLS and a certificate rotation; bad options fail at construction.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http2, { constants } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AttemptTimeoutError,
  createClient,
  http2Transport,
  IdentityError,
  roundRobin,
  staticDiscovery,
  TlsError,
  tlsFiles,
  type Client,
  type ClientOptions,
  type Http2TransportOptions,
} from "weft";
import { hasOpenssl, makePki, type Pem, type TestPki } from "../helpers/certs.js";
import { defer, server as http1Server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";
import { invalidOptionsError } from "../helpers/options.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = constants;

type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  body: string,
  server: H2Server,
) => void;

interface StreamRecord {
  readonly id: number;
  readonly session: number;
  readonly method: string;
  readonly path: string;
  readonly headers: http2.IncomingHttpHeaders;
  body: string;
  /** The RST_STREAM code the stream closed with (0: closed normally), once closed. */
  rstCode: number | undefined;
}

interface H2Server {
  readonly url: string;
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  /** TCP connections accepted. */
  connections: number;
  /** Sessions that closed (by either side). */
  sessionsClosed: number;
  readonly sessions: http2.ServerHttp2Session[];
  readonly streams: StreamRecord[];
  /** Streams open now, and the most open at once on one session. */
  open: number;
  maxOpenPerSession: number;
}

/** A `node:http2` server on 127.0.0.1, port 0 (h2c, or TLS with `tls` options), closed after the test. */
async function h2server(
  handler: StreamHandler,
  options: { tls?: http2.SecureServerOptions; settings?: http2.Settings } = {},
): Promise<H2Server> {
  const server =
    options.tls === undefined
      ? http2.createServer({ settings: options.settings })
      : http2.createSecureServer({ ...options.tls, settings: options.settings });
  const state: H2Server = {
    url: "",
    server,
    connections: 0,
    sessionsClosed: 0,
    sessions: [],
    streams: [],
    open: 0,
    maxOpenPerSession: 0,
  };
  const openBySession = new Map<http2.ServerHttp2Session, number>();
  server.on("connection", () => state.connections++);
  server.on("secureConnection", () => {});
  server.on("session", (session) => {
    state.sessions.push(session);
    openBySession.set(session, 0);
    session.on("error", () => {});
    session.on("close", () => state.sessionsClosed++);
  });
  server.on("stream", (stream, headers) => {
    const session = stream.session as http2.ServerHttp2Session;
    const record: StreamRecord = {
      id: stream.id as number,
      session: state.sessions.indexOf(session),
      method: headers[":method"] as string,
      path: headers[":path"] as string,
      headers,
      body: "",
      rstCode: undefined,
    };
    state.streams.push(record);
    state.open++;
    const open = (openBySession.get(session) ?? 0) + 1;
    openBySession.set(session, open);
    state.maxOpenPerSession = Math.max(state.maxOpenPerSession, open);
    stream.on("error", () => {});
    stream.on("close", () => {
      state.open--;
      openBySession.set(session, (openBySession.get(session) ?? 1) - 1);
      record.rstCode = stream.rstCode;
    });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      record.body = Buffer.concat(chunks).toString("utf8");
      if (!stream.closed) handler(stream, headers, record.body, state);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(state, { url: `${options.tls === undefined ? "http" : "https"}://127.0.0.1:${port}` });
  defer(async () => {
    for (const session of state.sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

function answer(
  stream: http2.ServerHttp2Stream,
  body: string,
  status = 200,
  headers: http2.OutgoingHttpHeaders = {},
): void {
  if (stream.closed) return;
  stream.respond({ ":status": status, "content-type": "text/plain", ...headers });
  stream.end(body);
}

function client(urls: string[], options: Partial<ClientOptions> = {}, transport: Http2TransportOptions = {}): Client {
  const c = createClient({
    service: "h2",
    discovery: staticDiscovery(urls),
    transport: http2Transport(transport),
    ...options,
  });
  defer(() => c.close());
  return c;
}

describe("the HTTP/2 transport (h2c)", () => {
  it("sends methods, paths, headers and bodies, and reads statuses, headers and bodies", async () => {
    const s = await h2server((stream, headers, body) => {
      const path = headers[":path"];
      if (path === "/json")
        return answer(stream, JSON.stringify({ got: JSON.parse(body) as unknown }), 201, {
          "content-type": "application/json",
        });
      if (path === "/empty") {
        stream.respond({ ":status": 204 }, { endStream: true });
        return;
      }
      if (path === "/missing") return answer(stream, "nope", 404);
      answer(stream, `${headers[":method"] as string} ${path as string} ${body}`, 200, {
        "set-cookie": ["a=1", "b=2"],
        "x-thing": "yes",
      });
    });
    const c = client([s.url]);
    const get = await c.request({ path: "/hello?x=1", headers: { "X-Trace": "t1", Connection: "keep-alive" } });
    expect(get.status).toBe(200);
    expect(get.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(get.headers["x-thing"]).toBe("yes");
    expect(get.headers[":status"]).toBeUndefined();
    expect(await get.text()).toBe("GET /hello?x=1 ");
    const post = await c.request({ method: "POST", path: "/echo", body: "héllo" });
    expect(await post.text()).toBe("POST /echo héllo");
    const json = await c.request({ method: "PUT", path: "/json", body: JSON.stringify({ a: [1, 2] }) });
    expect(json.status).toBe(201);
    expect(await json.json()).toEqual({ got: { a: [1, 2] } });
    const empty = await c.request({ path: "/empty" });
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe("");
    expect((await c.request({ path: "/missing" })).status).toBe(404);
    const fetched = await c.fetch("/hello");
    expect(await fetched.text()).toBe("GET /hello ");

    const [first, second] = s.streams;
    expect(first?.headers[":authority"]).toBe(new URL(s.url).host);
    expect(first?.headers[":scheme"]).toBe("http");
    expect(first?.headers["x-trace"]).toBe("t1");
    expect(first?.headers.connection).toBeUndefined();
    expect(second?.headers["content-length"]).toBe(String(Buffer.byteLength("héllo")));
    // Every call on one connection.
    expect(s.connections).toBe(1);
    expect(s.sessions).toHaveLength(1);
  });
});

describe("one connection, many streams", () => {
  it("carries 100 concurrent calls on ONE connection", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const s = await h2server((stream) => {
      held.push(stream);
      // Answer only once all 100 are open at the same time.
      if (held.length === 100) for (const h of held) answer(h, String(h.id));
    });
    const c = client([s.url]);
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const res = await c.request({ path: `/n/${i}` });
        return [res.status, await res.text()] as const;
      }),
    );
    expect(results.every(([status]) => status === 200)).toBe(true);
    expect(new Set(results.map(([, body]) => body)).size).toBe(100);
    expect(s.connections).toBe(1);
    expect(s.sessions).toHaveLength(1);
    expect(s.maxOpenPerSession).toBe(100);
  });

  it("shows its sessions per endpoint in the snapshot: open, streams on them, queued, GOAWAYs", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const s = await h2server((stream) => held.push(stream), { settings: { maxConcurrentStreams: 2 } });
    const c = client([s.url], {}, { maxSessions: 1 });
    const connections = () => c.snapshot().endpoints[0]?.connections;
    expect(connections()).toBeNull();
    const calls = Array.from({ length: 3 }, () => c.request({ path: "/" }));
    await until(() => held.length === 2, "two streams at the server");
    expect(connections()).toEqual({ open: 1, active: 2, queued: 1, goaways: 0, deadSessions: 0, pingRttMs: null });
    for (const stream of held.splice(0)) answer(stream, "ok");
    await until(() => held.length === 1, "the queued call at the server");
    answer(held[0]!, "ok");
    await Promise.all(calls.map(async (call) => (await call).text()));
    // The server goes away: one GOAWAY, counted; the next call opens a new session.
    s.sessions[0]!.goaway(constants.NGHTTP2_NO_ERROR);
    await until(() => connections()?.goaways === 1, "the GOAWAY to be seen");
    const next = c.request({ path: "/" });
    await until(() => held.length === 2, "the next call at the server");
    answer(held[1]!, "ok");
    expect(await (await next).text()).toBe("ok");
    // The stream's 'close' comes just after its body's end.
    await until(() => connections()?.active === 0, "the stream to close");
    expect(connections()).toMatchObject({ queued: 0, goaways: 1 });
  });

  it("opens a second session only past the server's SETTINGS_MAX_CONCURRENT_STREAMS, and queues past maxSessions", async () => {
    const s = await h2server((stream) => setTimeout(() => answer(stream, "ok"), 10), {
      settings: { maxConcurrentStreams: 10 },
    });
    const c = client([s.url], {}, { maxSessions: 2 });
    // One call first: the server's SETTINGS (10 streams) are known before the burst.
    expect((await c.request({ path: "/warm" })).status).toBe(200);
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => (await c.request({ path: `/b/${i}` })).status),
    );
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(s.connections).toBe(2);
    expect(s.maxOpenPerSession).toBe(10);
    // Nothing was refused: the client kept to the limit (it queued the rest).
    expect(s.streams.filter((r) => r.rstCode !== 0)).toEqual([]);
  });
});

describe("a stream waiting for a slot", () => {
  it("is cancelled without ever being sent (a per-try timeout while every slot is taken)", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const s = await h2server(
      (stream, headers) => {
        if (headers[":path"] === "/hold") held.push(stream);
        else answer(stream, "ok");
      },
      { settings: { maxConcurrentStreams: 1 } },
    );
    const c = client([s.url], { retry: false }, { maxSessions: 1 });
    expect(await (await c.request({ path: "/warm" })).text()).toBe("ok");
    const first = c.request({ path: "/hold" });
    await until(() => held.length === 1, "the first call at the server");
    await expect(c.request({ path: "/queued", timeout: { attemptMs: 50 } })).rejects.toBeInstanceOf(
      AttemptTimeoutError,
    );
    answer(held[0]!, "done");
    expect(await (await first).text()).toBe("done");
    expect(await (await c.request({ path: "/after" })).text()).toBe("ok");
    expect(s.streams.map((r) => r.path)).toEqual(["/warm", "/hold", "/after"]);
    expect(s.connections).toBe(1);
  });
});

describe("cancellation resets one stream, never the connection", () => {
  it("a hedge that lost is reset (RST_STREAM CANCEL at the server) and the connection stays open", async () => {
    let calls = 0;
    const s = await h2server((stream) => {
      // The first attempt hangs; the hedge is answered.
      if (++calls === 1) return;
      answer(stream, "hedge won");
    });
    const c = client([s.url], { hedge: { delayMs: 30 } });
    const res = await c.request({ path: "/slow" });
    expect(await res.text()).toBe("hedge won");
    await until(() => s.streams[0]?.rstCode !== undefined, "the losing stream to close at the server");
    expect(s.streams[0]).toMatchObject({ id: 1, rstCode: NGHTTP2_CANCEL });
    expect(s.streams[1]).toMatchObject({ id: 3, rstCode: 0 });
    // The next call reuses the same connection: nothing was closed.
    expect(await (await c.request({ path: "/again" })).text()).toBe("hedge won");
    expect(s.connections).toBe(1);
    expect(s.sessionsClosed).toBe(0);
  });

  it("the caller's abort resets only its own stream; another call on the session finishes", async () => {
    const held = new Map<string, http2.ServerHttp2Stream>();
    const s = await h2server((stream, headers) => held.set(headers[":path"] as string, stream));
    const c = client([s.url]);
    const controller = new AbortController();
    const aborted = c.request({ path: "/abort-me", signal: controller.signal });
    const other = c.request({ path: "/other" });
    await until(() => held.size === 2, "both streams at the server");
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    await until(
      () => s.streams.find((r) => r.path === "/abort-me")?.rstCode !== undefined,
      "the aborted stream to close",
    );
    expect(s.streams.find((r) => r.path === "/abort-me")?.rstCode).toBe(NGHTTP2_CANCEL);
    answer(held.get("/other")!, "still here");
    expect(await (await other).text()).toBe("still here");
    expect(s.connections).toBe(1);
    expect(s.sessionsClosed).toBe(0);
  });

  it("a per-try timeout resets the stream and keeps the connection", async () => {
    const s = await h2server((stream, headers) => {
      if (headers[":path"] !== "/hang") answer(stream, "ok");
    });
    const c = client([s.url], { timeout: { attemptMs: 100 }, retry: false });
    await expect(c.request({ path: "/hang" })).rejects.toBeInstanceOf(AttemptTimeoutError);
    await until(() => s.streams[0]?.rstCode !== undefined, "the timed-out stream to close");
    expect(s.streams[0]?.rstCode).toBe(NGHTTP2_CANCEL);
    expect(await (await c.request({ path: "/ok" })).text()).toBe("ok");
    expect(s.connections).toBe(1);
    expect(s.sessionsClosed).toBe(0);
  });
});

describe("GOAWAY and refused streams are never-sent failures", () => {
  it("GOAWAY mid-load: 0 failed calls, and no POST that reached the handler runs twice", async () => {
    const processed = new Map<string, number>();
    let goaways = 0;
    // A drains (GOAWAY) its first session after that session's 40th stream and its second after the
    // 30th; B its first after the 50th. The server then holds the next streams until 3 have come (or
    // 50 ms passed), so that streams above the last id are surely in flight, and sends GOAWAY with
    // the highest id it ran as the last id: the held ones at or below it run, those above do not.
    const server = (goawayAt: number[]): StreamHandler => {
      interface Held {
        readonly stream: http2.ServerHttp2Stream;
        readonly key: string;
      }
      interface Drain {
        handled: number;
        maxId: number;
        last: number | undefined;
        readonly held: Held[];
      }
      const drains = new Map<http2.ServerHttp2Session, Drain>();
      const run = (drain: Drain, { stream, key }: Held): void => {
        drain.handled++;
        drain.maxId = Math.max(drain.maxId, stream.id as number);
        processed.set(key, (processed.get(key) ?? 0) + 1);
        setTimeout(() => answer(stream, key), 2);
      };
      const goaway = (session: http2.ServerHttp2Session, drain: Drain): void => {
        if (drain.last !== undefined) return;
        drain.last = drain.maxId;
        session.goaway(constants.NGHTTP2_NO_ERROR, drain.last);
        goaways++;
        for (const held of drain.held) if ((held.stream.id as number) <= drain.last) run(drain, held);
      };
      return (stream, headers, body) => {
        const session = stream.session as http2.ServerHttp2Session;
        if (!drains.has(session)) drains.set(session, { handled: 0, maxId: 0, last: undefined, held: [] });
        const drain = drains.get(session)!;
        const held: Held = { stream, key: headers[":method"] === "POST" ? body : (headers[":path"] as string) };
        // Above the last id of the GOAWAY this session sent: nghttp2 refuses it; the handler must not run it.
        if (drain.last !== undefined) return (stream.id as number) > drain.last ? undefined : run(drain, held);
        const at = goawayAt[[...drains.keys()].indexOf(session)];
        if (at === undefined || drain.handled < at) return run(drain, held);
        drain.held.push(held);
        if (drain.held.length === 1) setTimeout(() => goaway(session, drain), 50);
        if (drain.held.length === 3) goaway(session, drain);
      };
    };
    const a = await h2server(server([40, 30]));
    const b = await h2server(server([50]));
    const c = client([a.url, b.url]);
    const refusedRetries: string[] = [];
    c.events.onRetry((e) => refusedRetries.push(e.reason));
    const calls = 240;
    const failures: unknown[] = [];
    const bodies = new Map<string, string>();
    let next = 0;
    // 24 callers in a loop: streams are always in flight when a GOAWAY goes out.
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        while (next < calls) {
          const i = next++;
          const post = i % 2 === 0;
          const key = post ? `order-${i}` : `/item/${i}`;
          try {
            const res = await c.request(
              post ? { method: "POST", path: "/orders", body: key } : { method: "GET", path: key },
            );
            bodies.set(key, await res.text());
          } catch (error) {
            failures.push(error);
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(bodies.size).toBe(calls);
    for (const [key, body] of bodies) expect(body).toBe(key);
    // Every call ran exactly once at a handler: POSTs without an idempotency key included.
    expect(processed.size).toBe(calls);
    expect([...processed.values()].every((n) => n === 1)).toBe(true);
    // GOAWAYs really cut streams in flight, and those were resent as refused.
    expect(goaways).toBeGreaterThanOrEqual(2);
    expect(refusedRetries.filter((r) => r === "WEFT_ERR_REFUSED_STREAM").length).toBeGreaterThan(0);
    expect(refusedRetries.every((r) => r === "WEFT_ERR_REFUSED_STREAM")).toBe(true);
  });

  it("a server closing its session gracefully mid-load (Node's session.close()): 0 failed calls, no POST twice", async () => {
    const processed = new Map<string, number>();
    let closes = 0;
    const server = (closeAt: number): StreamHandler => {
      let count = 0;
      return (stream, headers, body) => {
        const key = headers[":method"] === "POST" ? body : (headers[":path"] as string);
        processed.set(key, (processed.get(key) ?? 0) + 1);
        setTimeout(() => answer(stream, key), 2);
        // Node's close() sends GOAWAY with the last stream it took, and lets the open ones finish.
        if (++count === closeAt) {
          (stream.session as http2.ServerHttp2Session).close();
          closes++;
        }
      };
    };
    const a = await h2server(server(50));
    const b = await h2server(server(90));
    const c = client([a.url, b.url]);
    const failures: unknown[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        while (next < 240) {
          const i = next++;
          const key = i % 2 === 0 ? `order-${i}` : `/item/${i}`;
          try {
            const res = await c.request(i % 2 === 0 ? { method: "POST", path: "/orders", body: key } : { path: key });
            expect(await res.text()).toBe(key);
          } catch (error) {
            failures.push(error);
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(closes).toBe(2);
    expect(processed.size).toBe(240);
    expect([...processed.values()].every((n) => n === 1)).toBe(true);
    expect(a.sessionsClosed + b.sessionsClosed).toBeGreaterThanOrEqual(2);
  });

  it("a stream reset with REFUSED_STREAM is resent, even a POST, and the handler runs it once", async () => {
    let refused = 0;
    const s = await h2server((stream, _headers, body) => {
      if (refused++ === 0) {
        stream.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      answer(stream, `made ${body}`);
    });
    const c = client([s.url]);
    const res = await c.request({ method: "POST", path: "/orders", body: "o-1" });
    expect(await res.text()).toBe("made o-1");
    expect(s.streams.map((r) => r.body)).toEqual(["o-1", "o-1"]);
    expect(c.snapshot().counters).toMatchObject({ calls: 1, attempts: 2 });
    expect(s.connections).toBe(1);
  });

  it("a POST the server reset after reading it (not refused) is not resent", async () => {
    const s = await h2server((stream) => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    const c = client([s.url]);
    const error = await c.request({ method: "POST", path: "/pay", body: "x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_HTTP2_STREAM_ERROR" });
    expect(s.streams).toHaveLength(1);
  });
});

describe("bodies", () => {
  it("holds back a large body nobody reads (flow control stalls the server's writes), then delivers all of it", async () => {
    const size = 4 * 1024 * 1024;
    const state = { sent: 0, blocked: false, done: false };
    const s = await h2server((stream, headers) => {
      if (headers[":path"] === "/small") return answer(stream, "small");
      stream.respond({ ":status": 200 });
      const chunk = Buffer.alloc(16 * 1024, 120);
      const pump = (): void => {
        while (state.sent < size) {
          state.sent += chunk.length;
          if (!stream.write(chunk)) {
            state.blocked = true;
            stream.once("drain", pump);
            return;
          }
        }
        stream.end(() => (state.done = true));
      };
      pump();
    });
    // A 256 KiB stream window (the default is 1 MiB): what the server may send before we read.
    const c = client([s.url], {}, { streamWindowBytes: 256 * 1024 });
    const res = await c.request({ path: "/big" });
    await until(() => state.blocked, "the server's writes to stall");
    // Another call on the same session still goes through while the big body waits.
    expect(await (await c.request({ path: "/small" })).text()).toBe("small");
    expect(state.sent).toBeLessThan(512 * 1024);
    expect(state.done).toBe(false);
    const bytes = await res.arrayBuffer();
    expect(bytes.byteLength).toBe(size);
    expect(s.connections).toBe(1);
  });

  it("opens its flow-control windows: 1 MiB a stream and 8 MiB the session by default, or as configured", async () => {
    const seen: { stream: number | undefined; session: number | undefined }[] = [];
    const s = await h2server((stream) => {
      const session = stream.session;
      // The client's SETTINGS, and the session window it granted (65 535 + its WINDOW_UPDATE).
      seen.push({ stream: session?.remoteSettings.initialWindowSize, session: session?.state.remoteWindowSize });
      stream.respond({ ":status": 200 });
      stream.end(Buffer.alloc(4 * 1024 * 1024, 1));
    });
    const byDefault = client([s.url]);
    expect((await (await byDefault.request({ path: "/" })).arrayBuffer()).byteLength).toBe(4 * 1024 * 1024);
    const configured = client([s.url], {}, { streamWindowBytes: 65_535, connectionWindowBytes: 65_535 });
    expect((await (await configured.request({ path: "/" })).arrayBuffer()).byteLength).toBe(4 * 1024 * 1024);
    expect(seen).toEqual([
      { stream: 1024 * 1024, session: 8 * 1024 * 1024 },
      { stream: 65_535, session: 65_535 },
    ]);
  });

  it("streams a body through .body, and dump() of a large body resets only its stream", async () => {
    const s = await h2server((stream, headers) => {
      stream.respond({ ":status": 200 });
      if (headers[":path"] === "/parts") {
        stream.write("a");
        stream.write("b");
        stream.end("c");
        return;
      }
      // Larger than the stream window (1 MiB): the server is still writing when the body is dumped.
      stream.write(Buffer.alloc(4 * 1024 * 1024, 97));
      stream.end();
    });
    const c = client([s.url]);
    const streamed = await c.request({ path: "/parts" });
    let text = "";
    for await (const chunk of streamed.body!) text += Buffer.from(chunk).toString();
    expect(text).toBe("abc");
    const big = await c.request({ path: "/big" });
    const ended = new Promise<void>((resolve) => big.onBodyEnd!(resolve));
    await big.dump();
    await ended;
    await until(() => s.streams[1]?.rstCode !== undefined, "the dumped stream to close");
    expect(s.streams[1]?.rstCode).toBe(NGHTTP2_CANCEL);
    expect(await (await c.request({ path: "/parts" })).text()).toBe("abc");
    expect(s.connections).toBe(1);
  });

  it("sends a one-shot stream body", async () => {
    const s = await h2server((stream, _headers, body) => answer(stream, `${body.length}:${body.slice(0, 3)}`));
    const c = client([s.url]);
    const parts = ["abc", "def", "x".repeat(100_000)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(Buffer.from(next));
      },
    });
    const res = await c.request({ method: "POST", path: "/upload", body });
    expect(await res.text()).toBe("100006:abc");
  });
});

describe("sessions: close, release, reconnect", () => {
  it("close() lets a call in flight finish, without resetting it", async () => {
    let held: http2.ServerHttp2Stream | undefined;
    const s = await h2server((stream) => (held = stream));
    const c = client([s.url]);
    const call = c.request({ path: "/slow" });
    await until(() => held !== undefined, "the call at the server");
    const closed = c.close();
    answer(held!, "finished");
    const res = await call;
    expect(await res.text()).toBe("finished");
    await closed;
    expect(s.streams[0]?.rstCode).toBe(0);
  });

  it("opens a new session when the server closed the old one", async () => {
    const s = await h2server((stream) => answer(stream, "ok"));
    const c = client([s.url]);
    expect(await (await c.request({ path: "/1" })).text()).toBe("ok");
    s.sessions[0]!.destroy();
    await until(() => s.sessionsClosed === 1, "the server's session to close");
    expect(await (await c.request({ path: "/2" })).text()).toBe("ok");
    expect(s.connections).toBe(2);
  });

  it("closes a session idle for idleTimeoutMs, and the next call opens a new one", async () => {
    const s = await h2server((stream) => answer(stream, "ok"));
    const c = client([s.url], {}, { idleTimeoutMs: 50 });
    expect(await (await c.request({ path: "/1" })).text()).toBe("ok");
    await until(() => s.sessionsClosed === 1, "the idle session to close");
    expect(await (await c.request({ path: "/2" })).text()).toBe("ok");
    expect(s.connections).toBe(2);
  });

  it("says so when the server does not speak HTTP/2 (an HTTP/1.1-only server on an http:// endpoint)", async () => {
    const h1 = await http1Server((_req, res) => res.end("h1"));
    const c = client([h1.url], { retry: false });
    const error = await c.request({ path: "/" }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      `${h1.url} did not answer the HTTP/2 connection preface (Protocol error): an HTTP/1.1-only server? Use undiciTransport() for it`,
    );
  });

  it("fails a call to a port that refuses as never sent (a POST is resent to another endpoint)", async () => {
    const s = await h2server((stream) => answer(stream, "ok"));
    const dead = await h2server(() => {});
    const deadUrl = dead.url;
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    const c = client([deadUrl, s.url], { balancer: roundRobin() });
    for (let i = 0; i < 4; i++) expect((await c.request({ method: "POST", path: "/p", body: "x" })).status).toBe(200);
    expect(s.streams).toHaveLength(4);
    expect(c.snapshot().counters.attempts).toBeGreaterThan(4);
  });
});

describe("options", () => {
  it("fails bad options at construction, naming the option, the value and what is allowed", () => {
    const message = (options: unknown): string =>
      invalidOptionsError(() => http2Transport(options as Http2TransportOptions)).message;
    expect(message({ maxSessions: 0 })).toBe(
      "invalid option transport.maxSessions: got 0; expected a positive integer",
    );
    expect(message({ maxConcurrentStreams: 1.5 })).toBe(
      "invalid option transport.maxConcurrentStreams: got 1.5; expected a positive integer",
    );
    expect(message({ connectTimeoutMs: -1 })).toBe(
      "invalid option transport.connectTimeoutMs: got -1; expected a positive number of milliseconds",
    );
    expect(message({ idleTimeoutMs: "soon" })).toBe(
      'invalid option transport.idleTimeoutMs: got "soon"; expected a positive number of milliseconds or false (off)',
    );
    expect(message({ maxSesions: 2 })).toMatch(
      /^unknown option transport\.maxSesions \(did you mean transport\.maxSessions\?\)/,
    );
    expect(message({ streamWindowBytes: 1024 })).toBe(
      "invalid option transport.streamWindowBytes: got 1024; expected an integer of at least 65535",
    );
    expect(message({ streamWindowBytes: 2 ** 31 })).toBe(
      "invalid option transport.streamWindowBytes: got 2147483648; expected an integer from 65535 (HTTP/2's default) to 2147483647 bytes",
    );
    expect(message({ streamWindowBytes: 4 << 20, connectionWindowBytes: 1 << 20 })).toBe(
      "invalid option transport.connectionWindowBytes: got 1048576; expected at least transport.streamWindowBytes (4194304)",
    );
    expect(message({ tls: { ca: "" } })).toBe('invalid option transport.tls.ca: got ""; expected a PEM string');
    expect(message("fast")).toMatch(/^invalid option transport: got "fast"; expected an options object/);
  });
});

describe.skipIf(!hasOpenssl)("the HTTP/2 transport over TLS (ALPN h2)", () => {
  const ORDERS = "spiffe://example.org/ns/shop/sa/orders";
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.close());

  it("negotiates h2 over ALPN, checks the SPIFFE identity, and multiplexes on one connection", async () => {
    const s = await h2server(
      (stream) => answer(stream, `h2 over ${(stream.session?.socket as TLSSocket).alpnProtocol}`),
      {
        tls: { ...pki.server },
      },
    );
    const c = client([s.url], {}, { tls: { ca: pki.ca, identity: ORDERS } });
    const results = await Promise.all(Array.from({ length: 20 }, async () => (await c.request({ path: "/" })).text()));
    expect(new Set(results)).toEqual(new Set(["h2 over h2"]));
    expect(s.connections).toBe(1);
    expect(s.streams[0]?.headers[":scheme"]).toBe("https");
    expect(c.snapshot().tls).toMatchObject({ identity: [ORDERS], identityFailures: 0 });
  });

  it("presents a client certificate (mTLS)", async () => {
    const web = pki.client("web", "URI:spiffe://example.org/ns/shop/sa/web");
    const s = await h2server(
      (stream) => {
        const peer = (stream.session?.socket as TLSSocket).getPeerCertificate();
        answer(stream, peer.subjectaltname ?? "none");
      },
      { tls: { ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true } },
    );
    const c = client([s.url], {}, { tls: { ca: pki.ca, cert: web.cert, key: web.key, identity: ORDERS } });
    expect(await (await c.request({ path: "/" })).text()).toBe("URI:spiffe://example.org/ns/shop/sa/web");
  });

  it("resumes the TLS session when it reconnects (an abbreviated handshake), with mTLS and the identity check", async () => {
    const web = pki.client("web-resume", "URI:spiffe://example.org/ns/shop/sa/web");
    const s = await h2server(
      (stream) => answer(stream, (stream.session?.socket as TLSSocket).getPeerCertificate().serialNumber),
      { tls: { ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true } },
    );
    const reused: boolean[] = [];
    s.server.on("secureConnection", (socket: TLSSocket) => reused.push(socket.isSessionReused()));
    const c = client(
      [s.url],
      {},
      { tls: { ca: pki.ca, cert: web.cert, key: web.key, identity: ORDERS }, idleTimeoutMs: 50 },
    );
    const serial = new X509Certificate(web.cert).serialNumber;
    for (let i = 1; i <= 3; i++) {
      expect(await (await c.request({ path: "/" })).text()).toBe(serial);
      // The idle session closes; the next call makes a new one.
      await until(() => s.sessionsClosed >= i, "the idle session to close");
    }
    expect(s.connections).toBe(3);
    expect(reused).toEqual([false, true, true]);
    expect(c.snapshot().tls).toMatchObject({ identityFailures: 0 });
  });

  it("a certificate rotation moves new streams to a new session; a stream in flight on the old one finishes", async () => {
    const serial = (pem: string): string => new X509Certificate(pem).serialNumber;
    const dir = join(pki.dir, "h2-rotation");
    mkdirSync(dir);
    const write = (pem: Pem): void => {
      writeFileSync(join(dir, "svid_key.pem"), pem.key);
      writeFileSync(join(dir, "svid.pem"), pem.cert);
    };
    const first = pki.client("h2-rot-1", "URI:spiffe://example.org/ns/shop/sa/web");
    const second = pki.client("h2-rot-2", "URI:spiffe://example.org/ns/shop/sa/web");
    write(first);
    writeFileSync(join(dir, "bundle.pem"), pki.ca);
    const source = tlsFiles({
      cert: join(dir, "svid.pem"),
      key: join(dir, "svid_key.pem"),
      ca: join(dir, "bundle.pem"),
      debounceMs: 10,
      pollMs: 50,
    });
    defer(async () => source.close());
    const held: http2.ServerHttp2Stream[] = [];
    const s = await h2server(
      (stream, headers) => {
        if (headers[":path"] === "/hold") return held.push(stream);
        const peer = (stream.session?.socket as TLSSocket).getPeerCertificate();
        answer(stream, peer.serialNumber);
      },
      { tls: { ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true } },
    );
    const c = client([s.url], {}, { tls: { source, identity: ORDERS } });
    expect(await (await c.request({ path: "/who" })).text()).toBe(serial(first.cert));
    const slow = c.request({ path: "/hold" });
    await until(() => held.length === 1, "the slow call at the server");
    write(second);
    await until(() => c.snapshot().tls?.material.version === 2, "the client to apply the new certificate");
    expect(await (await c.request({ path: "/who" })).text()).toBe(serial(second.cert));
    answer(held[0]!, "finished");
    expect(await (await slow).text()).toBe("finished");
    expect(s.connections).toBe(2);
    expect(s.streams.find((r) => r.path === "/hold")?.rstCode).toBe(0);
  });

  it("fails a server with another identity with WEFT_ERR_IDENTITY before any stream is sent", async () => {
    const impostor = pki.issue("impostor-h2", {
      sans: "IP:127.0.0.1,URI:spiffe://example.org/ns/shop/sa/impostor",
      usage: "server",
    });
    const s = await h2server((stream) => answer(stream, "should not run"), { tls: { ...impostor } });
    s.server.on("tlsClientError", () => {});
    const c = client([s.url], { retry: { maxAttempts: 3 } }, { tls: { ca: pki.ca, identity: ORDERS } });
    const error = await c.request({ method: "POST", path: "/pay", body: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect(error).toMatchObject({ code: "WEFT_ERR_IDENTITY", endpoint: s.url });
    expect(s.streams).toHaveLength(0);
    expect(c.snapshot().counters).toMatchObject({ calls: 1, attempts: 1 });
  });

  it("fails a server that does not speak h2 over ALPN with WEFT_ERR_TLS, naming the reason", async () => {
    const https = await import("node:https");
    const h1 = https.createServer({ ...pki.server }, (_req, res) => res.end("h1"));
    h1.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => h1.listen(0, "127.0.0.1", resolve));
    defer(() => new Promise<void>((resolve) => h1.close(() => resolve())));
    const url = `https://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    const c = client([url], {}, { tls: { ca: pki.ca } });
    const error = await c.request({ path: "/" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TlsError);
    expect((error as Error).message).toMatch(/ALPN|protocol/);
    expect(c.snapshot().tls?.tlsFailures).not.toEqual({});
  });
});

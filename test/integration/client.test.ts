/**
 * The client against real HTTP servers on loopback: the fast path, fetch semantics, bodies,
 * cancellation, events, and closing.
 */
import { describe, expect, it } from "vitest";
import {
  createClient,
  ErrorCodes,
  isReplayable,
  staticDiscovery,
  type BodyInit,
  type Client,
  type MeshRequest,
  type WeftError,
} from "weft";
import { scoped, server } from "../helpers/scope.js";
import { refusedPort } from "../helpers/server.js";
import { until } from "../helpers/until.js";
import { fakeClock } from "weft/testing";

function client(urls: string[], options: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  const c = createClient({ service: "test", discovery: staticDiscovery(urls), ...options });
  scoped(c);
  return c;
}

const echo = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse, body: string) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ method: req.method, url: req.url, contentType: req.headers["content-type"] ?? null, body }));
};

describe("client.request", () => {
  it("returns status, headers and the body as text, JSON or bytes", async () => {
    const s = await server((_req, res) => {
      res.setHeader("x-served-by", "s1");
      res.end(JSON.stringify({ ok: true }));
    });
    const c = client([s.url]);
    const r1 = await c.request({ path: "/v1/items/42?full=1" });
    expect(r1.status).toBe(200);
    expect(r1.headers["x-served-by"]).toBe("s1");
    expect(await r1.json()).toEqual({ ok: true });
    expect(await (await c.request({ path: "/" })).text()).toBe('{"ok":true}');
    expect(new Uint8Array(await (await c.request({ path: "/" })).arrayBuffer()).byteLength).toBe(11);
    expect(s.received.map((r) => r.url)).toEqual(["/v1/items/42?full=1", "/", "/"]);
  });

  it("returns an HTTP error status as a response, not a throw", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end("busy");
    });
    const r = await client([s.url]).request({ path: "/" });
    expect(r.status).toBe(503);
    expect(await r.text()).toBe("busy");
  });

  it("sends method, headers and body", async () => {
    const s = await server(echo);
    const r = await client([s.url]).request({
      method: "put",
      path: "/doc",
      headers: { "X-Trace": "t1" },
      body: "hello",
    });
    expect(await r.json()).toEqual({
      method: "PUT",
      url: "/doc",
      contentType: "text/plain;charset=UTF-8",
      body: "hello",
    });
    expect(s.received[0]?.headers["x-trace"]).toBe("t1");
  });

  it("spreads concurrent calls over every endpoint", async () => {
    const a = await server();
    const b = await server();
    const c = client([a.url, b.url]);
    await Promise.all(Array.from({ length: 40 }, async () => (await c.request({ path: "/" })).text()));
    expect(a.received.length).toBeGreaterThan(5);
    expect(b.received.length).toBeGreaterThan(5);
  });

  it("moves traffic away from a replica that answered slowly", async () => {
    let slowOnce = true;
    const slow = await server((_req, res) => {
      if (slowOnce) {
        slowOnce = false;
        setTimeout(() => res.end("late"), 300);
      } else res.end("ok");
    });
    const fast = await server();
    const c = client([slow.url, fast.url]);
    // Warm both up so each has an estimate, then make the slow one answer slowly once.
    await Promise.all(Array.from({ length: 8 }, async () => (await c.request({ path: "/" })).text()));
    const before = slow.received.length;
    for (let i = 0; i < 50; i++) await (await c.request({ path: "/" })).text();
    expect(slow.received.length - before).toBeLessThan(5);
  });

  it("passes a connection error through with its code when retries are off", async () => {
    const port = await refusedPort();
    const error = (await client([`http://127.0.0.1:${port}`], { retry: false })
      .request({ path: "/" })
      .catch((e: unknown) => e)) as { code?: string };
    expect(error.code).toBe("ECONNREFUSED");
  });

  it("says which limit ran out when every attempt failed, with the last error as its cause", async () => {
    const port = await refusedPort();
    const error = (await client([`http://127.0.0.1:${port}`])
      .request({ path: "/" })
      .catch((e: unknown) => e)) as WeftError;
    expect(error.code).toBe(ErrorCodes.ATTEMPTS);
    expect(error.attempts).toBe(3);
    expect((error.cause as { code?: string }).code).toBe("ECONNREFUSED");
  });

  it("times out a slow attempt and the server sees the connection go", async () => {
    const s = await server(() => {
      /* never answers */
    });
    const c = client([s.url], { timeout: { attemptMs: 100, totalMs: 5000 }, retry: false });
    const error = (await c.request({ path: "/" }).catch((e: unknown) => e)) as WeftError;
    expect(error.code).toBe(ErrorCodes.ATTEMPT_TIMEOUT);
    await expect.poll(() => s.aborted).toBe(1);
  });

  it("aborts on the caller's signal with the caller's reason, and the server sees the abort", async () => {
    const s = await server(() => {});
    const c = client([s.url]);
    const controller = new AbortController();
    const call = c.request({ path: "/", signal: controller.signal }).catch((e: unknown) => e);
    await expect.poll(() => s.received.length).toBe(1);
    const reason = new Error("caller gave up");
    controller.abort(reason);
    expect(await call).toBe(reason);
    await expect.poll(() => s.aborted).toBe(1);
  });

  it("runs options.use middleware for each attempt, with the endpoint picked", async () => {
    const s = await server();
    const seen: string[] = [];
    const c = client([s.url], {
      use: [
        (req, next) => {
          seen.push(req.endpoint?.url ?? "none");
          return next({ ...req, headers: { ...req.headers, authorization: "Bearer t" } });
        },
      ],
    });
    await (await c.request({ path: "/" })).text();
    expect(seen).toEqual([s.url]);
    expect(s.received[0]?.headers.authorization).toBe("Bearer t");
    expect(c.stack.roles).toEqual([
      "observe",
      "trace",
      "deadline",
      "retry",
      "balance",
      "breaker",
      "use",
      "attempt",
      "attempt-trace",
    ]);
  });

  it("lets options.stack insert a layer by role", async () => {
    const s = await server();
    const order: string[] = [];
    const c = client([s.url], {
      stack: (stack) =>
        stack.insertAfter("balance", {
          role: "audit",
          layer: (next) => (req) => {
            order.push(`audit ${req.method}`);
            return next(req);
          },
        }),
    });
    await (await c.request({ path: "/" })).text();
    expect(order).toEqual(["audit GET"]);
    expect(c.stack.roles.indexOf("audit")).toBe(c.stack.roles.indexOf("balance") + 1);
  });

  it("reports attempts and calls as typed events, and a disposer stops them", async () => {
    const s = await server();
    const c = client([s.url]);
    const ends: { status: number | undefined; outcome: string; attempts: number }[] = [];
    const starts: string[] = [];
    const offStart = c.events.onAttemptStart((e) => starts.push(e.endpoint));
    const offEnd = c.events.onCallEnd((e) => ends.push({ status: e.status, outcome: e.outcome, attempts: e.attempts }));
    await (await c.request({ path: "/" })).text();
    offStart();
    offEnd();
    await (await c.request({ path: "/" })).text();
    expect(starts).toEqual([s.url]);
    expect(ends).toEqual([{ status: 200, outcome: "success", attempts: 1 }]);
  });

  it("snapshots endpoints and counters as plain JSON", async () => {
    const s = await server((req, res) => {
      res.statusCode = req.url === "/missing" ? 404 : 200;
      res.end();
    });
    const c = client([s.url]);
    await (await c.request({ path: "/" })).text();
    await (await c.request({ path: "/missing" })).text();
    const snap = JSON.parse(JSON.stringify(c.snapshot()));
    expect(snap.service).toBe("test");
    expect(snap.balancer).toBe("p2cEwma");
    expect(snap.counters).toMatchObject({
      calls: 2,
      successes: 1,
      ignorable: 1,
      failures: 0,
      inflight: 0,
      attempts: 2,
    });
    expect(snap.endpoints).toHaveLength(1);
    expect(snap.endpoints[0]).toMatchObject({ url: s.url, state: "healthy", inflight: 0, requests: 2, failures: 0 });
    expect(snap.endpoints[0].ewmaMs).toBeGreaterThan(0);
  });

  it("refuses calls after close", async () => {
    const s = await server();
    const c = client([s.url]);
    await c.close();
    const error = (await c.request({ path: "/" }).catch((e: unknown) => e)) as WeftError;
    expect(error.code).toBe(ErrorCodes.CLIENT_CLOSED);
  });

  it("rejects a path that does not start with /", async () => {
    const s = await server();
    await expect(client([s.url]).request({ path: "items" })).rejects.toThrow(
      /path must be a string starting with "\/"/,
    );
  });
});

describe("client.fetch", () => {
  it("accepts a path, a URL or a Request and returns a real Response", async () => {
    const s = await server(echo);
    const c = client([s.url]);
    const r1 = await c.fetch("/a?x=1");
    expect(r1).toBeInstanceOf(Response);
    expect(r1.ok).toBe(true);
    expect(r1.url).toBe(`${s.url}/a?x=1`);
    expect(((await r1.json()) as { url: string }).url).toBe("/a?x=1");
    expect(((await (await c.fetch(new URL("http://catalog/b?y=2"))).json()) as { url: string }).url).toBe("/b?y=2");
    const r3 = await c.fetch(
      new Request("http://catalog/c", {
        method: "POST",
        body: "from a Request",
        headers: { "content-type": "text/x" },
      }),
    );
    expect(await r3.json()).toEqual({ method: "POST", url: "/c", contentType: "text/x", body: "from a Request" });
  });

  it("streams the response body before the server has finished", async () => {
    let finish: () => void = () => {};
    const s = await server((_req, res) => {
      res.write("first;");
      finish = () => res.end("last");
    });
    const r = await client([s.url]).fetch("/stream");
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("first;");
    finish();
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += new TextDecoder().decode(chunk.value);
    expect(rest).toBe("last");
  });

  it("errors the body stream when the caller aborts while reading it", async () => {
    const s = await server((_req, res) => res.write("partial"));
    const controller = new AbortController();
    const r = await client([s.url]).fetch("/", { signal: controller.signal });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort(new Error("stop reading"));
    await expect(reader.read()).rejects.toThrow();
    await expect.poll(() => s.aborted).toBe(1);
  });

  it("sends each kind of body, with the content type fetch would set", async () => {
    const s = await server(echo);
    const c = client([s.url]);
    const send = async (body: unknown) =>
      (await (await c.fetch("/", { method: "POST", body: body as BodyInit })).json()) as {
        contentType: string;
        body: string;
      };
    expect(await send("text")).toMatchObject({ body: "text", contentType: "text/plain;charset=UTF-8" });
    expect(await send(new TextEncoder().encode("bytes"))).toMatchObject({ body: "bytes" });
    expect(await send(Buffer.from("buffer"))).toMatchObject({ body: "buffer" });
    expect(await send(new URLSearchParams({ a: "1", b: "two" }))).toMatchObject({
      body: "a=1&b=two",
      contentType: "application/x-www-form-urlencoded;charset=UTF-8",
    });
    const form = new FormData();
    form.set("field", "value");
    const multipart = await send(form);
    expect(multipart.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(multipart.body).toContain('name="field"');
    expect(await send(new Blob(["blob"], { type: "application/x-blob" }))).toMatchObject({
      body: "blob",
      contentType: "application/x-blob",
    });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("str"));
        controller.enqueue(new TextEncoder().encode("eam"));
        controller.close();
      },
    });
    expect(await send(stream)).toMatchObject({ body: "stream" });
  });

  it("marks string and byte bodies replayable and a stream body send-once", async () => {
    const s = await server();
    const bodies: boolean[] = [];
    const c = client([s.url], {
      use: [
        (req: MeshRequest, next) => {
          bodies.push(isReplayable(req));
          return next(req);
        },
      ],
    });
    await (await c.fetch("/", { method: "POST", body: "x" })).text();
    await (await c.fetch("/", { method: "POST", body: new Blob(["b"]) })).text();
    await (await c.fetch("/", { method: "POST", body: new ReadableStream({ start: (ctl) => ctl.close() }) })).text();
    expect(bodies).toEqual([true, true, false]);
  });

  it("gives null bodies for 204 and HEAD-style answers", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    const r = await client([s.url]).fetch("/");
    expect(r.status).toBe(204);
    expect(r.body).toBeNull();
  });
});

describe("a stalled endpoint", () => {
  it("shows stalledForMs while its attempts in flight go unanswered for ≥ 1 s and ≥ 10× its latency, and clears when they end", async () => {
    const clock = fakeClock(0, Date.now());
    const held: import("node:http").ServerResponse[] = [];
    const frozen = await server((req, res) => {
      if (req.url === "/hold") held.push(res);
      else res.end("ok");
    });
    const c = client([frozen.url], { clock, retry: false });
    // A latency estimate first (an answered call), then three calls the replica never answers.
    await (await c.request({ path: "/quick" })).text();
    const pending = [0, 1, 2].map(() => c.request({ path: "/hold" }));
    await until(() => held.length === 3, "the held requests to reach the server");
    const endpoint = () => c.snapshot().endpoints[0]!;
    expect(endpoint()).toMatchObject({ inflight: 3, stalledForMs: null, state: "healthy" });
    clock.advance(900);
    expect(endpoint().stalledForMs).toBeNull();
    clock.advance(300);
    expect(endpoint().stalledForMs).toBe(1200);
    for (const res of held) res.end("late");
    for (const res of await Promise.all(pending)) await res.text();
    expect(endpoint()).toMatchObject({ inflight: 0, stalledForMs: null });
  });
});

/**
 * The undici transport's own dispatch handler (src/transport/dispatch.ts), against real
 * `node:http` servers: what undici's `request()` body gave before has to hold — bodies read
 * whole or streamed, large bodies held back by backpressure, dump and cancel, headers (repeated
 * ones, 1xx before the answer), null bodies, body-end callbacks, and a connection that is reused
 * after a body is read or dumped.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { BodyUsedError, createClient, staticDiscovery, undiciTransport, type Client } from "weft";
import { scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

const client = (url: string): Client =>
  scoped(createClient({ service: "dispatch", discovery: staticDiscovery([url]), retry: false }));

describe("the undici transport's dispatch handler", () => {
  it("reads a body whole as text (without a BOM), JSON or an exact ArrayBuffer, once", async () => {
    const s = await server((req, res) => {
      if (req.url === "/bom") return res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("héllo")]));
      if (req.url === "/json") return res.end('{"a":[1,2]}');
      res.end("bytes!");
    });
    const c = client(s.url);
    expect(await (await c.request({ path: "/bom" })).text()).toBe("héllo");
    expect(await (await c.request({ path: "/json" })).json()).toEqual({ a: [1, 2] });
    const res = await c.request({ path: "/bytes" });
    const buffer = await res.arrayBuffer();
    expect(buffer.byteLength).toBe(6);
    expect(Buffer.from(buffer).toString()).toBe("bytes!");
    expect(res.bodyUsed).toBe(true);
    await expect(res.text()).rejects.toBeInstanceOf(BodyUsedError);
    const bad = await c.request({ path: "/bytes" });
    await expect(bad.json()).rejects.toBeInstanceOf(SyntaxError);
  });

  it("gives arrayBuffer() exactly the body's bytes, whether it came in one chunk, a few small ones or many large ones", async () => {
    const large = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < large.length; i++) large[i] = i % 251;
    const s = await server(async (req, res) => {
      if (req.url === "/large") return res.end(large);
      // Two small writes, flushed apart: two chunks joined into a buffer from Node's shared pool.
      res.write("first-");
      await new Promise((resolve) => setTimeout(resolve, 20));
      res.end("second");
    });
    const c = client(s.url);
    const small = await (await c.request({ path: "/small" })).arrayBuffer();
    expect(small.byteLength).toBe(12);
    expect(Buffer.from(small).toString()).toBe("first-second");
    const whole = await (await c.request({ path: "/large" })).arrayBuffer();
    expect(whole.byteLength).toBe(large.length);
    expect(Buffer.from(whole).equals(large)).toBe(true);
    // Each call gets a buffer of its own.
    const again = await (await c.request({ path: "/large" })).arrayBuffer();
    new Uint8Array(again)[0] = 255;
    expect(new Uint8Array(whole)[0]).toBe(0);
  });

  it("shows its connections per endpoint in the snapshot: sockets open, requests on them, queued", async () => {
    const held: ServerResponse[] = [];
    const s = await server((_req, res) => void held.push(res));
    const c = scoped(
      createClient({
        service: "dispatch-pool",
        discovery: staticDiscovery([s.url]),
        retry: false,
        transport: undiciTransport({ connections: 1 }),
      }),
    );
    const connections = () => c.snapshot().endpoints[0]?.connections;
    expect(connections()).toBeNull();
    const calls = [c.request({ path: "/a" }), c.request({ path: "/b" })];
    await until(() => held.length === 1, "the first request at the server");
    expect(connections()).toEqual({ open: 1, active: 1, queued: 1 });
    held[0]!.end("a");
    await until(() => held.length === 2, "the second request at the server");
    held[1]!.end("b");
    expect(await Promise.all(calls.map(async (call) => (await call).text()))).toEqual(["a", "b"]);
    expect(connections()).toEqual({ open: 1, active: 0, queued: 0 });
  });

  it("keeps headers raw until read: lower-case names, repeated ones as arrays, after a 103 Early Hints", async () => {
    const s = await server((_req, res: ServerResponse) => {
      res.writeEarlyHints({ link: "</style.css>; rel=preload" });
      res.setHeader("Set-Cookie", ["a=1", "b=2"]);
      res.setHeader("X-Thing", "yes");
      res.end("ok");
    });
    const res = await client(s.url).request({ path: "/" });
    expect(res.status).toBe(200);
    expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(res.headers["x-thing"]).toBe("yes");
    expect(res.headers.link).toBeUndefined();
    expect(await res.text()).toBe("ok");
  });

  it("holds back a large body nobody reads (the server's writes stall), then delivers all of it", async () => {
    // More than the kernel can take in for a paused reader: Linux grows a loopback socket's
    // receive buffer up to tcp_rmem's max (32 MiB here) and the sender's by tcp_wmem (4 MiB), so
    // a 4 MiB body could be flushed whole with the socket paused.
    const size = 48 * 1024 * 1024;
    let flushed = false;
    const s = await server((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        flushed = true;
        res.end();
      };
      pump();
    });
    const res = await client(s.url).request({ path: "/big" });
    // Nobody reads: the socket is paused, so the server cannot finish writing 48 MiB.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(flushed).toBe(false);
    const bytes = await res.arrayBuffer();
    expect(bytes.byteLength).toBe(size);
    expect(flushed).toBe(true);
  });

  it("streams the body through .body with backpressure, and reads chunks already buffered first", async () => {
    const s = await server((_req, res) => {
      res.write("first;");
      setTimeout(() => res.end("second"), 30);
    });
    const res = await client(s.url).request({ path: "/" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const reader = res.body!.getReader();
    const parts: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value).toString());
    }
    expect(parts.join("")).toBe("first;second");
    expect(res.bodyUsed).toBe(true);
  });

  it("gives a null body for 204 and 304, and calls onBodyEnd once the body is done", async () => {
    const s = await server((req, res) => {
      if (req.url === "/204") return res.writeHead(204).end();
      res.end("x");
    });
    const c = client(s.url);
    const empty = await c.request({ path: "/204" });
    expect(empty.body).toBeNull();
    const res = await c.request({ path: "/x" });
    let ended = 0;
    res.onBodyEnd?.(() => ended++);
    expect(await res.text()).toBe("x");
    await until(() => ended === 1, "onBodyEnd");
    res.onBodyEnd?.(() => ended++);
    await until(() => ended === 2, "onBodyEnd after the end");
  });

  it("keeps the connection after a small body is dumped, and closes it when a large one is", async () => {
    const sockets = new Set<Socket>();
    let largeSocket: Socket | undefined;
    const s = await server((req: IncomingMessage, res) => {
      sockets.add(req.socket);
      if (req.url === "/large") {
        largeSocket = req.socket;
        return res.end(Buffer.alloc(1024 * 1024, 1));
      }
      res.end("small");
    });
    const c = client(s.url);
    for (let i = 0; i < 10; i++) await (await c.request({ path: "/small" })).dump();
    // Sequential calls: the pool's usual one or two connections, not one per call.
    expect(sockets.size).toBeLessThanOrEqual(2);
    for (const socket of sockets) expect(socket.destroyed).toBe(false);
    const large = await c.request({ path: "/large" });
    await large.dump();
    await large.dump(); // twice is safe
    await until(() => largeSocket?.destroyed === true, "the large body's connection to close");
    expect(await (await c.request({ path: "/small" })).text()).toBe("small");
  });

  it("cancels a body mid-way when the caller aborts, erroring the reader", async () => {
    let closed = false;
    const s = await server((_req, res) => {
      res.write("part");
      res.on("close", () => (closed = true));
    });
    const controller = new AbortController();
    const res = await client(s.url).request({ path: "/", signal: controller.signal });
    const reading = res.text();
    controller.abort(new Error("caller left"));
    await expect(reading).rejects.toThrow("caller left");
    await until(() => closed, "the server to see the connection close");
  });
});

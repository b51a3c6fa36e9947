import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Client, request } from "undici";
import { describe, expect, it } from "vitest";
import { INITIAL_PLAN, planChunk } from "./fault-pipe.js";
import { faultProxy, type Fault, type FaultProxy } from "./fault-proxy.js";
import { rejection } from "../../test/helpers/rejection.js";

/** A real node:http server: `/hello`, `/echo` (returns the request body), `/bytes?n=N` (N bytes, in chunks). */
async function startServer(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/echo") {
      req.pipe(res);
      return;
    }
    if (url.pathname === "/bytes") {
      const body = pattern(Number(url.searchParams.get("n")));
      res.writeHead(200, { "content-length": body.length });
      for (let at = 0; at < body.length; at += 16 * 1024) res.write(body.subarray(at, at + 16 * 1024));
      res.end();
      return;
    }
    res.end("hello");
  });
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: async () => {
      const gone = [...sockets].map((socket) => new Promise((resolve) => socket.once("close", resolve)));
      server.close();
      server.closeAllConnections();
      await Promise.all([once(server, "close"), ...gone]);
    },
  };
}

function pattern(bytes: number): Buffer {
  const body = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) body[i] = i % 251;
  return body;
}

/** A server, a proxy in front of it and a keep-alive client (one connection at a time); everything is closed after `run`. */
async function withProxy(
  fault: Fault | undefined,
  run: (t: {
    proxy: FaultProxy;
    server: Awaited<ReturnType<typeof startServer>>;
    get: (path: string, opts?: object) => ReturnType<typeof request>;
  }) => Promise<void>,
): Promise<void> {
  const server = await startServer();
  const proxy = await faultProxy({ target: server.url, ...(fault ? { fault } : {}) });
  const client = new Client(proxy.url);
  try {
    await run({
      proxy,
      server,
      get: (path, opts = {}) => request(`${proxy.url}${path}`, { dispatcher: client, ...opts }),
    });
  } finally {
    await client.destroy();
    await proxy.close();
    await server.close();
  }
}

/** The error code undici surfaces, looking through its wrappers to the socket error. */
function codeOf(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.cause?.code ?? e.code;
}

/** Connects to `port` and returns the error code, once the failed socket is closed. */
async function connectError(port: number): Promise<string | undefined> {
  const socket = connect(port, "127.0.0.1");
  let code: string | undefined;
  socket.on("error", (err: NodeJS.ErrnoException) => (code = err.code));
  await new Promise((resolve) => socket.once("close", resolve));
  return code;
}

describe("faultProxy pass-through", () => {
  it("forwards requests and bodies both ways and counts connections and bytes", async () => {
    await withProxy(undefined, async ({ proxy, server, get }) => {
      expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
      const hello = await get("/hello");
      expect(await hello.body.text()).toBe("hello");
      const upload = pattern(100_000);
      const echo = await get("/echo", { method: "POST", body: upload });
      expect(Buffer.from(await echo.body.arrayBuffer()).equals(upload)).toBe(true);

      expect(server.requests()).toBe(2);
      const stats = proxy.stats;
      expect(stats.connections).toBe(1); // the client kept its connection alive
      expect(stats.activeConnections).toBe(1);
      expect(stats.bytesUp).toBeGreaterThan(upload.length);
      expect(stats.bytesDown).toBeGreaterThan(upload.length + "hello".length);
      expect(stats.resets).toBe(0);
      expect(proxy.fault).toBeNull();
    });
  });

  it("passes a half-close on: a client that ends its side still gets the whole response", async () => {
    await withProxy(undefined, async ({ proxy }) => {
      const socket = connect(proxy.port, "127.0.0.1");
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.end("GET /bytes?n=50000 HTTP/1.1\r\nhost: x\r\n\r\n");
      await once(socket, "end");
      const response = Buffer.concat(chunks);
      expect(response.subarray(response.indexOf("\r\n\r\n") + 4).equals(pattern(50_000))).toBe(true);
    });
  });

  it("resets the client when the target refuses the proxy", async () => {
    const server = await startServer();
    const target = server.url;
    await server.close(); // nothing listens there now
    const proxy = await faultProxy({ target });
    try {
      expect(codeOf(await rejection(request(`${proxy.url}/hello`, { reset: true })))).toMatch(
        /ECONNRESET|UND_ERR_SOCKET/,
      );
      expect(proxy.stats.resets).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});

describe("latency", () => {
  it("delays a response by at least latencyMs", async () => {
    await withProxy({ kind: "latency", latencyMs: 150 }, async ({ get }) => {
      const started = performance.now();
      const res = await get("/hello");
      expect(await res.body.text()).toBe("hello");
      expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    });
  });

  it("keeps the byte order when jitter draws a shorter delay for a later chunk", async () => {
    let draw = 0;
    const random = (): number => (draw++ % 2 === 0 ? 0.99 : 0); // long, short, long, short…
    const server = await startServer();
    const proxy = await faultProxy({
      target: server.url,
      fault: { kind: "latency", latencyMs: 5, jitterMs: 40 },
      random,
    });
    try {
      const res = await request(`${proxy.url}/bytes?n=300000`, { reset: true });
      expect(Buffer.from(await res.body.arrayBuffer()).equals(pattern(300_000))).toBe(true);
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it("applies to connections already open, and to the request direction when asked", async () => {
    await withProxy(undefined, async ({ proxy, get }) => {
      await (await get("/hello")).body.text();
      void proxy.setFault({ kind: "latency", latencyMs: 100, direction: "up" });
      const started = performance.now();
      expect(await (await get("/hello")).body.text()).toBe("hello");
      expect(performance.now() - started).toBeGreaterThanOrEqual(100);
      expect(proxy.stats.connections).toBe(1); // the same keep-alive connection
    });
  });
});

describe("reset", () => {
  it("resets the connection before anything reaches the server", async () => {
    await withProxy({ kind: "reset" }, async ({ proxy, server, get }) => {
      const err = await rejection(get("/hello"));
      expect(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]).toContain(codeOf(err));
      expect(server.requests()).toBe(0);
      expect(proxy.stats.bytesUp).toBe(0);
      expect(proxy.stats.resets).toBeGreaterThanOrEqual(1);
    });
  });

  it("resets connections already open at once", async () => {
    await withProxy(undefined, async ({ proxy }) => {
      const socket = connect(proxy.port, "127.0.0.1");
      socket.write("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
      await once(socket, "data");
      const failed = new Promise<string | undefined>((resolve) =>
        socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code)),
      );
      void proxy.setFault({ kind: "reset" });
      expect(await failed).toBe("ECONNRESET");
      expect(proxy.stats.resets).toBe(1);
    });
  });

  it("with afterBytes: 0, lets the server do the work and loses the whole answer", async () => {
    await withProxy({ kind: "reset", afterBytes: 0 }, async ({ proxy, server, get }) => {
      expect(["ECONNRESET", "UND_ERR_SOCKET"]).toContain(codeOf(await rejection(get("/hello"))));
      expect(server.requests()).toBe(1);
      expect(proxy.stats.bytesDown).toBe(0);
    });
  });

  it("with afterBytes, fails the body mid-way after the server answered", async () => {
    await withProxy({ kind: "reset", afterBytes: 1000 }, async ({ proxy, server, get }) => {
      const res = await get("/bytes?n=200000");
      expect(res.statusCode).toBe(200);
      const err = await rejection(res.body.arrayBuffer());
      expect(["ECONNRESET", "UND_ERR_SOCKET"]).toContain(codeOf(err));
      expect(server.requests()).toBe(1);
      expect(proxy.stats.bytesDown).toBe(1000);
      expect(proxy.stats.resets).toBe(1);
    });
  });

  it("with afterBytes, sends exactly that many bytes, then a RST", async () => {
    await withProxy({ kind: "reset", afterBytes: 777 }, async ({ proxy }) => {
      const socket = connect(proxy.port, "127.0.0.1");
      let received = 0;
      let code: string | undefined;
      socket.on("data", (chunk: Buffer) => (received += chunk.length));
      socket.on("error", (err: NodeJS.ErrnoException) => (code = err.code));
      socket.write("GET /bytes?n=100000 HTTP/1.1\r\nhost: x\r\n\r\n");
      await new Promise((resolve) => socket.once("close", resolve));
      expect(proxy.stats.bytesDown).toBe(777);
      expect(proxy.stats.resets).toBe(1);
      // The client has the time to read them before the RST (which drops unread bytes).
      expect(received).toBe(777);
      expect(code).toBe("ECONNRESET");
    });
  });
});

describe("blackhole", () => {
  it("never answers and never forwards: the client times out, the server sees nothing", async () => {
    await withProxy({ kind: "blackhole" }, async ({ proxy, server, get }) => {
      const err = await rejection(get("/hello", { headersTimeout: 200 }));
      expect(codeOf(err)).toBe("UND_ERR_HEADERS_TIMEOUT");
      expect(server.requests()).toBe(0);
      expect(proxy.stats.bytesUp).toBe(0);
      expect(proxy.stats.connections).toBe(1);
    });
  });

  it("freezes an open connection and releases what it held, in order, when lifted", async () => {
    await withProxy(undefined, async ({ proxy, server, get }) => {
      await (await get("/hello")).body.text();
      void proxy.setFault({ kind: "blackhole" });
      const pending = get("/echo", { method: "POST", body: "held" });
      // Proving a negative needs a wait: the request must not arrive while frozen.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(server.requests()).toBe(1);
      void proxy.clearFault();
      expect(await (await pending).body.text()).toBe("held");
      expect(server.requests()).toBe(2);
    });
  });
});

describe("slowBody", () => {
  it("delivers the whole body, no faster than bytesPerSecond", async () => {
    await withProxy({ kind: "slowBody", bytesPerSecond: 20_000 }, async ({ get }) => {
      const started = performance.now();
      const res = await get("/bytes?n=8000");
      expect(Buffer.from(await res.body.arrayBuffer()).equals(pattern(8000))).toBe(true);
      // slices of 1000 bytes (bytesPerSecond / 20); the first leaves at once, the other 7000+ bytes at 20 kB/s
      expect(performance.now() - started).toBeGreaterThanOrEqual(((8000 - 1000) / 20_000) * 1000);
    });
  });
});

describe("refuse", () => {
  it("refuses connects, closes open connections, and listens on the same port when cleared", async () => {
    await withProxy(undefined, async ({ proxy, get }) => {
      await (await get("/hello")).body.text();
      await proxy.setFault({ kind: "refuse" });
      expect(proxy.stats.activeConnections).toBe(0); // the keep-alive connection was closed
      expect(codeOf(await rejection(get("/hello")))).toBe("ECONNREFUSED");
      expect(await connectError(proxy.port)).toBe("ECONNREFUSED");

      await proxy.clearFault();
      expect(await (await get("/hello")).body.text()).toBe("hello");
      expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    });
  });

  it("can start refused", async () => {
    const server = await startServer();
    const proxy = await faultProxy({ target: server.url, fault: { kind: "refuse" } });
    try {
      expect(await connectError(proxy.port)).toBe("ECONNREFUSED");
      await proxy.clearFault();
      expect(await (await request(`${proxy.url}/hello`, { reset: true })).body.text()).toBe("hello");
    } finally {
      await proxy.close();
      await server.close();
    }
  });
});

describe("close", () => {
  it("destroys open connections and pending delays, and leaves the port closed", async () => {
    const handles = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r.startsWith(kind)).length;
    // Handles leave that list in the loop's close phase: let one loop turn pass before counting.
    const loopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
    await loopTurn();
    const tcpBefore = handles("TCP");
    const server = await startServer();
    const timersBefore = handles("Timeout");
    const proxy = await faultProxy({ target: server.url, fault: { kind: "latency", latencyMs: 60_000 } });
    const socket = connect(proxy.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
    // The response is held for a minute: wait until its timer is armed (no event tells; poll each turn).
    while (handles("Timeout") === timersBefore) await new Promise((resolve) => setImmediate(resolve));

    const clientClosed = once(socket, "close");
    await proxy.close();
    await clientClosed;
    expect(proxy.stats).toMatchObject({ activeConnections: 0, bytesDown: 0 });
    expect(handles("Timeout")).toBe(timersBefore);
    expect(await connectError(proxy.port)).toBe("ECONNREFUSED");
    await proxy.close(); // idempotent
    await server.close();
    await loopTurn();
    expect(handles("TCP")).toBe(tcpBefore);
    expect(() => proxy.setFault({ kind: "blackhole" })).toThrow(/after close/);
  });
});

describe("options", () => {
  it("rejects a bad target, naming it and what is allowed", async () => {
    await expect(faultProxy({ target: "ftp://127.0.0.1:21" })).rejects.toThrow(
      /target must be an http: or https: origin/,
    );
    await expect(faultProxy({ target: "not a url" })).rejects.toThrow(TypeError);
    await expect(faultProxy({ target: "http://127.0.0.1:8081/v1" })).rejects.toThrow(/no path/);
    await expect(faultProxy({ target: 8081 as unknown as string })).rejects.toThrow(/target/);
    await expect(faultProxy({ target: "http://127.0.0.1:1", port: 70_000 })).rejects.toThrow(RangeError);
  });

  it("rejects a bad fault, naming the field and what is allowed", async () => {
    const bad = (fault: unknown) => faultProxy({ target: "http://127.0.0.1:1", fault: fault as Fault });
    await expect(bad({ kind: "slow" })).rejects.toThrow(/fault.kind must be one of "latency", "reset"/);
    await expect(bad({ kind: "latency", latencyMs: -1 })).rejects.toThrow(RangeError);
    await expect(bad({ kind: "latency", latencyMs: "5" })).rejects.toThrow(
      /fault.latencyMs must be a finite number of milliseconds/,
    );
    await expect(bad({ kind: "latency", latencyMs: 5, direction: "sideways" })).rejects.toThrow(
      /direction must be "down", "up" or "both"/,
    );
    await expect(bad({ kind: "reset", afterbytes: 5 })).rejects.toThrow(
      /no option 'afterbytes'; allowed: kind, afterBytes/,
    );
    await expect(bad({ kind: "reset", afterBytes: 1.5 })).rejects.toThrow(/whole number/);
    await expect(bad({ kind: "slowBody", bytesPerSecond: 0 })).rejects.toThrow(/bytesPerSecond must be > 0/);
  });

  it("setFault throws at once on a bad fault and keeps the previous one", async () => {
    await withProxy({ kind: "latency", latencyMs: 1 }, async ({ proxy }) => {
      expect(() => proxy.setFault({ kind: "latency", latencyMs: Number.NaN })).toThrow(RangeError);
      expect(proxy.fault).toEqual({ kind: "latency", latencyMs: 1, jitterMs: 0, direction: "down" });
    });
  });
});

describe("planChunk (pure)", () => {
  const chunk = Buffer.alloc(2500);
  it("slowBody cuts bytesPerSecond/20-byte slices spaced to the rate", () => {
    const { slices, state } = planChunk(
      { kind: "slowBody", bytesPerSecond: 20_000 },
      "down",
      chunk,
      100,
      INITIAL_PLAN,
      Math.random,
    );
    expect(slices.map((s) => [s.data.length, s.dueAt])).toEqual([
      [1000, 100],
      [1000, 150],
      [500, 200],
    ]);
    expect(state.nextFreeAt).toBe(225);
    // the next chunk, read at once, waits for the rate
    expect(
      planChunk({ kind: "slowBody", bytesPerSecond: 20_000 }, "down", chunk, 101, state, Math.random).slices[0]!.dueAt,
    ).toBe(225);
  });

  it("slowBody leaves the request direction alone; latency adds latency plus drawn jitter", () => {
    expect(
      planChunk({ kind: "slowBody", bytesPerSecond: 1 }, "up", chunk, 7, INITIAL_PLAN, Math.random).slices,
    ).toEqual([{ data: chunk, dueAt: 7 }]);
    const latency: Fault = { kind: "latency", latencyMs: 100, jitterMs: 50, direction: "down" };
    expect(planChunk(latency, "down", chunk, 10, INITIAL_PLAN, () => 0.5).slices[0]!.dueAt).toBe(135);
    expect(planChunk(latency, "up", chunk, 10, INITIAL_PLAN, () => 0.5).slices[0]!.dueAt).toBe(10);
  });
});

/** The fetch and got transports against real servers, and what weft forces on a user's got. */
import got from "got";
import { describe, expect, it } from "vitest";
import {
  createClient,
  ErrorCodes,
  fetchTransport,
  gotTransport,
  staticDiscovery,
  type TransportFactory,
  type WeftError,
} from "weft";
import { scoped, server } from "../helpers/scope.js";

function client(url: string, transport: TransportFactory, timeout?: { attemptMs?: number; totalMs?: number }) {
  // Retries off: these tests are about what one attempt through each transport does.
  const c = createClient({
    service: "t",
    discovery: staticDiscovery([url]),
    transport,
    retry: false,
    ...(timeout ? { timeout } : {}),
  });
  scoped(c);
  return c;
}

describe.each([
  ["fetchTransport", () => fetchTransport()],
  ["gotTransport", () => gotTransport(got)],
])("%s", (_name, make) => {
  it("sends method, headers and body and returns status, headers and body", async () => {
    const s = await server((req, res, body) => {
      res.setHeader("x-echo", String(req.headers["x-in"]));
      res.statusCode = 201;
      res.end(`${req.method} ${req.url} ${body}`);
    });
    const c = client(s.url, make());
    const r = await c.request({ method: "POST", path: "/p?q=1", headers: { "x-in": "v" }, body: "data" });
    expect(r.status).toBe(201);
    expect(r.headers["x-echo"]).toBe("v");
    expect(await r.text()).toBe("POST /p?q=1 data");
    const f = await c.fetch("/f");
    expect(await f.text()).toBe("GET /f ");
  });

  it("returns a 503 as a response", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end("down");
    });
    const r = await client(s.url, make()).request({ path: "/" });
    expect(r.status).toBe(503);
    expect(await r.text()).toBe("down");
    expect(s.received).toHaveLength(1);
  });

  it("cancels an attempt at its timeout", async () => {
    const s = await server(() => {});
    const error = (await client(s.url, make(), { attemptMs: 100, totalMs: 5000 })
      .request({ path: "/" })
      .catch((e: unknown) => e)) as WeftError;
    expect(error.code).toBe(ErrorCodes.ATTEMPT_TIMEOUT);
    await expect.poll(() => s.aborted).toBe(1);
  });
});

describe("gotTransport", () => {
  it("keeps the instance's hooks", async () => {
    const s = await server();
    const instance = got.extend({
      hooks: {
        beforeRequest: [
          (options) => {
            options.headers["x-hooked"] = "yes";
          },
        ],
      },
    });
    await (await client(s.url, gotTransport(instance)).request({ path: "/" })).text();
    expect(s.received[0]?.headers["x-hooked"]).toBe("yes");
  });

  it("turns off got's own retries so weft's classifier decides (the server sees one request)", async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const instance = got.extend({ retry: { limit: 5, calculateDelay: () => 1 } });
    const r = await client(s.url, gotTransport(instance)).request({ path: "/" });
    expect(r.status).toBe(503);
    expect(s.received).toHaveLength(1);
  });

  it("rejects something that is not a got instance", () => {
    expect(() => gotTransport({} as never)).toThrow(/expected a got instance/);
  });
});

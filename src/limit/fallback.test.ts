import { describe, expect, it } from "vitest";
import { createClient } from "../client/index.js";
import { ErrorCodes } from "../core/errors.js";
import { staticDiscovery } from "../discovery/static.js";
import { mockService } from "../testing/mock-service.js";

const discovery = staticDiscovery(["http://127.0.0.1:1"]);
const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

describe("fallback", () => {
  it("answers a call that failed with an error, and sees the error", async () => {
    const seen: string[] = [];
    const client = createClient({
      service: "s",
      discovery,
      retry: false,
      transport: mockService(() => {
        throw refused();
      }),
      fallback: (req, error) => {
        seen.push(`${req.path} ${(error as { code: string }).code}`);
        return { status: 200, body: "cached" };
      },
    });
    const res = await client.request({ path: "/items" });
    expect(await res.text()).toBe("cached");
    expect(seen).toEqual(["/items ECONNREFUSED"]);
    // The counters still record the failure underneath.
    expect(client.snapshot().counters.failures).toBe(1);
    await client.close();
  });

  it("leaves HTTP error responses and the caller's abort alone", async () => {
    let calls = 0;
    const client = createClient({
      service: "s",
      discovery,
      retry: false,
      transport: mockService(() => ({ status: 500 })),
      fallback: () => {
        calls++;
        return { status: 200 };
      },
    });
    expect((await client.request({ path: "/" })).status).toBe(500);
    const controller = new AbortController();
    controller.abort(new Error("mine"));
    await expect(client.request({ path: "/", signal: controller.signal })).rejects.toThrow("mine");
    expect(calls).toBe(0);
    await client.close();
  });

  it("is validated", () => {
    expect(() => createClient({ service: "s", discovery, fallback: "x" as never })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_OPTIONS }),
    );
  });
});

describe("coalesce", () => {
  it("sends identical GETs in flight together once, and each caller gets the body", async () => {
    let sent = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const client = createClient({
      service: "s",
      discovery,
      coalesce: true,
      transport: mockService(async (req) => {
        sent++;
        await gate;
        return { status: 200, body: `body of ${req.path}` };
      }),
    });
    const calls = [
      client.request({ path: "/a" }),
      client.request({ path: "/a" }),
      client.request({ path: "/b" }),
      client.request({ path: "/a", headers: { authorization: "other" } }),
    ];
    release();
    const bodies = await Promise.all(calls.map(async (c) => (await c).text()));
    expect(bodies).toEqual(["body of /a", "body of /a", "body of /b", "body of /a"]);
    // /a twice shared one request; /b and /a with other credentials went alone.
    expect(sent).toBe(3);
    await client.close();
  });

  it("one caller giving up does not cancel the shared request for the others", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let cancelled = false;
    const client = createClient({
      service: "s",
      discovery,
      coalesce: true,
      transport: mockService(async (req) => {
        req.cancel?.addEventListener("abort", () => (cancelled = true));
        await gate;
        return { status: 200, body: "ok" };
      }),
    });
    const quitter = new AbortController();
    const a = client.request({ path: "/x", signal: quitter.signal }).catch((e: unknown) => e);
    const b = client.request({ path: "/x" });
    quitter.abort(new Error("bye"));
    expect(((await a) as Error).message).toBe("bye");
    release();
    expect(await (await b).text()).toBe("ok");
    expect(cancelled).toBe(false);
    await client.close();
  });

  it("never coalesces a request with a body or another method", async () => {
    let sent = 0;
    const client = createClient({
      service: "s",
      discovery,
      coalesce: true,
      transport: mockService(() => (sent++, { status: 200 })),
    });
    await Promise.all([
      client.request({ method: "POST", path: "/", body: "x" }),
      client.request({ method: "POST", path: "/", body: "x" }),
      client.request({ method: "DELETE", path: "/" }),
      client.request({ method: "DELETE", path: "/" }),
    ]);
    expect(sent).toBe(4);
    await client.close();
  });
});

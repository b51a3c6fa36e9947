/**
 * weft/server inside the real frameworks it promises: Express 5 (`app.use(server.middleware)`)
 * and Fastify 5 (`fastify.register(server.fastify)`). In each: the handler runs in the request's
 * context after the framework parsed the body, the route template names the request, refusals go
 * out through the framework, and the drain knows the framework's server.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify, { type FastifyInstance } from "fastify";
import { request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, staticDiscovery, type Client } from "weft";
import { inbound, inboundContext, type Inbound, type RequestEndEvent } from "weft/server";

/** The downstream every handler calls: it answers with the deadline header it received. */
let downstream: http.Server;
let next: Client;

beforeAll(async () => {
  downstream = http.createServer((req, res) => res.end(String(req.headers["x-weft-timeout-ms"])));
  await new Promise<void>((resolve) => downstream.listen(0, "127.0.0.1", resolve));
  next = createClient({
    service: "inventory",
    discovery: staticDiscovery([`http://127.0.0.1:${(downstream.address() as AddressInfo).port}`]),
  });
});
afterAll(async () => {
  await next.close();
  downstream.closeAllConnections();
  await new Promise<void>((resolve) => downstream.close(() => resolve()));
});

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await undiciRequest(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** What every framework's route answers: the context it ran in, the parsed body, the deadline it passed on. */
async function handlerBody(body: unknown): Promise<Record<string, unknown>> {
  const ctx = inboundContext();
  const forwarded = Number(await (await next.request({ path: "/stock" })).text());
  return {
    inContext: ctx !== undefined,
    remaining: ctx?.remainingMs(),
    forwarded,
    body,
    identity: ctx?.identity?.id ?? null,
  };
}

const OPTIONS = {
  shed: { limit: 50 },
  identity: { header: "x-weft-peer-identity", trustedProxies: ["127.0.0.1", "::ffff:127.0.0.1"] },
  authz: { rules: [{ paths: ["/items/:id"], from: ["spiffe://example.org/*"] }] },
  drain: { delayMs: 0, graceMs: 1000 },
} as const;

function ends(server: Inbound): RequestEndEvent[] {
  const seen: RequestEndEvent[] = [];
  server.events.onRequestEnd((e) => seen.push(e));
  return seen;
}

describe("Express 5", () => {
  let url: string;
  let server: Inbound;
  let listener: http.Server;

  beforeAll(async () => {
    server = inbound({ service: "catalog-express", ...OPTIONS });
    const app = express();
    app.use(server.middleware);
    app.use(express.json());
    app.post("/items/:id", async (req, res) => {
      res.json(await handlerBody(req.body));
    });
    listener = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => listener.once("listening", resolve));
    url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it("runs the route in the request's context after express.json(), and passes the deadline on", async () => {
    const seen = ends(server);
    const res = await post(
      `${url}/items/42`,
      { qty: 2 },
      { "x-weft-timeout-ms": "400", "x-weft-peer-identity": "spiffe://example.org/sa/web" },
    );
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ inContext: true, body: { qty: 2 }, identity: "spiffe://example.org/sa/web" });
    expect(body.forwarded as number).toBeLessThanOrEqual(398);
    expect(body.forwarded as number).toBeGreaterThan(0);
    // The route template, not the raw path, names the request.
    expect(seen.map((e) => e.route)).toEqual(["/items/:id"]);
  });

  it("refuses before Express routes: 401 without an identity, 504 for an expired deadline", async () => {
    expect((await post(`${url}/items/1`, {})).status).toBe(401);
    expect((await post(`${url}/items/1`, {}, { "x-weft-timeout-ms": "0" })).status).toBe(504);
    const health = await undiciRequest(`${url}/readyz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });

  it("drains the server Express made, found from the requests it carried", async () => {
    const result = await server.drain();
    expect(result.forced).toBe(0);
    expect(listener.listening).toBe(false);
  });
});

describe("Fastify 5", () => {
  let url: string;
  let server: Inbound;
  let app: FastifyInstance;

  beforeAll(async () => {
    server = inbound({ service: "catalog-fastify", ...OPTIONS });
    app = Fastify();
    await app.register(server.fastify);
    app.post("/items/:id", async (request) => handlerBody(request.body));
    await app.listen({ port: 0, host: "127.0.0.1" });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server.close();
    await app.close();
  });

  it("runs the handler in the request's context after Fastify parsed the body, and passes the deadline on", async () => {
    const seen = ends(server);
    const res = await post(
      `${url}/items/42`,
      { qty: 3 },
      { "x-weft-timeout-ms": "400", "x-weft-peer-identity": "spiffe://example.org/sa/web" },
    );
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ inContext: true, body: { qty: 3 }, identity: "spiffe://example.org/sa/web" });
    expect(body.forwarded as number).toBeLessThanOrEqual(398);
    expect(seen.map((e) => e.route)).toEqual(["/items/:id"]);
  });

  it("refuses through Fastify's reply: 401 without an identity, 403 for an unlisted one, 504 expired", async () => {
    const none = await post(`${url}/items/1`, {});
    expect(none.status).toBe(401);
    expect(none.headers["content-type"]).toMatch(/application\/json/);
    expect(none.json().error).toBe("unauthenticated");
    expect((await post(`${url}/items/1`, {}, { "x-weft-peer-identity": "spiffe://other.org/sa/x" })).status).toBe(403);
    expect((await post(`${url}/items/1`, {}, { "x-weft-timeout-ms": "0" })).status).toBe(504);
  });

  it("knows Fastify's server for the drain before any request, and drains it", async () => {
    const fresh = inbound({ service: "fresh", drain: { delayMs: 0, graceMs: 1000 } });
    const other = Fastify();
    await other.register(fresh.fastify);
    other.get("/", async () => "ok");
    await other.listen({ port: 0, host: "127.0.0.1" });
    await fresh.drain();
    expect(other.server.listening).toBe(false);
    await fresh.close();
    await other.close();
  });
});

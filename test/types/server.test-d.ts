/**
 * Type tests for `weft/server`: inbound() options and the server's events. Checked by tsc, never
 * run (vitest typecheck, `npm test`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, expectTypeOf, it } from "vitest";
import { createMesh, etcdRegistration } from "weft";
import {
  inbound,
  inboundContext,
  type Inbound,
  type InboundContext,
  type Priority,
  type RequestEndEvent,
  type ShedEvent,
} from "weft/server";

const service = "catalog";

describe("inbound() options", () => {
  it("needs only a service", () => {
    expectTypeOf(inbound({ service })).toEqualTypeOf<Inbound>();
    // @ts-expect-error -- service is required
    inbound({});
  });

  it("types each protection's options, and turns one off with false", () => {
    inbound({
      service,
      deadline: { defaultMs: 5000, maxMs: 30_000, grpcTimeout: true },
      shed: { adaptive: true, minLimit: 8, retryAfterSeconds: 1 },
      authz: { rules: [{ from: ["spiffe://example.org/ns/shop/sa/web"], methods: ["GET"], paths: ["/items/*"] }] },
      health: { ready: async () => true, readyPath: "/ready" },
      drain: { graceMs: 10_000, delayMs: 1000, signals: ["SIGTERM"] },
      priority: (req: IncomingMessage): Priority => (req.headers["x-priority"] === "low" ? "low" : "normal"),
      metrics: false,
      tracing: false,
      mesh: createMesh(),
    });
    inbound({ service, deadline: false, shed: false, authz: false, health: false, identity: false });
    // @ts-expect-error -- graceMs is a number of milliseconds
    inbound({ service, drain: { graceMs: "10s" } });
    // @ts-expect-error -- not a signal name
    inbound({ service, drain: { signals: ["SIGTERMINATE"] } });
    // @ts-expect-error -- the priorities are critical | high | normal | low
    inbound({ service, priority: () => "urgent" });
    // @ts-expect-error -- identity from a header needs the proxies it trusts
    inbound({ service, identity: { header: "x-forwarded-client-cert" } });
  });

  it("drains registrations: anything with close()", () => {
    const registration = etcdRegistration({ hosts: ["http://127.0.0.1:2379"], prefix: "/s/", url: "http://h:1" });
    inbound({ service, drain: { deregister: [{ close: () => {} }, { close: async () => {} }] } });
    void registration.then((r) => inbound({ service, drain: { deregister: [r] } }));
    // @ts-expect-error -- a registration has close()
    inbound({ service, drain: { deregister: [{ stop: () => {} }] } });
  });

  it("refuses unknown keys on an object literal", () => {
    // @ts-expect-error -- a typo (sched for shed) is an error, not a protection silently left at its default
    inbound({ service, sched: { limit: 10 } });
    // @ts-expect-error -- no such deadline option
    inbound({ service, deadline: { defaultTimeoutMs: 5000 } });
  });
});

describe("the inbound server", () => {
  const server = inbound({ service });

  it("wraps a node:http handler and gives the request's context", () => {
    const handler = server.handler((req, res) => {
      expectTypeOf(req).toEqualTypeOf<IncomingMessage>();
      expectTypeOf(res).toEqualTypeOf<ServerResponse>();
      expectTypeOf(inboundContext()).toEqualTypeOf<InboundContext | undefined>();
      res.end();
    });
    expectTypeOf(handler).toEqualTypeOf<(req: IncomingMessage, res: ServerResponse) => void>();
  });

  it("gives each listener its event type", () => {
    server.events.onRequestEnd((e) => {
      expectTypeOf(e).toEqualTypeOf<RequestEndEvent>();
      expectTypeOf(e.status).toEqualTypeOf<number>();
      expectTypeOf(e.priority).toEqualTypeOf<Priority>();
      expectTypeOf(e.aborted).toEqualTypeOf<boolean>();
    });
    server.events.onShed((e) => {
      expectTypeOf(e).toEqualTypeOf<ShedEvent>();
      expectTypeOf(e.limit).toEqualTypeOf<number>();
    });
    // @ts-expect-error -- no such event
    server.events.onRequest(() => {});
  });
});

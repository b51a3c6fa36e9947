import { describe, expect, it } from "vitest";
import {
  createClient,
  staticDiscovery,
  RequestContext,
  currentContext,
  runWithContext,
  runWithoutContext,
  Cancellation,
  ErrorCodes,
  type MeshRequest,
} from "weft";
import { fakeClock, mockService } from "weft/testing";

/** A client over an in-memory transport that records each attempt's request. */
function recordingClient(clock = fakeClock(), extra: Record<string, unknown> = {}) {
  const seen: MeshRequest[] = [];
  const client = createClient({
    service: "catalog",
    discovery: staticDiscovery(["http://127.0.0.1:1"]),
    transport: mockService((req) => {
      seen.push(req);
      return { status: 200, body: "ok" };
    }),
    clock,
    ...extra,
  });
  return { client, seen, clock };
}

describe("RequestContext", () => {
  it("takes the sooner of timeoutMs and deadline, on its clock", () => {
    const clock = fakeClock(1000);
    expect(new RequestContext({ clock, timeoutMs: 300 }).deadline).toBe(1300);
    expect(new RequestContext({ clock, timeoutMs: 300, deadline: 1100 }).deadline).toBe(1100);
    expect(new RequestContext({ clock }).deadline).toBe(Infinity);
    const ctx = new RequestContext({ clock, timeoutMs: 300 });
    clock.advance(120);
    expect(ctx.remainingMs()).toBe(180);
  });

  it("is aborted by a signal it was given, at once when already aborted", () => {
    const controller = new AbortController();
    const ctx = new RequestContext({ signal: controller.signal });
    expect(ctx.aborted).toBe(false);
    controller.abort(new Error("job cancelled"));
    expect(ctx.aborted).toBe(true);
    expect((ctx.cancel.reason as Error).message).toBe("job cancelled");
    expect(new RequestContext({ signal: AbortSignal.abort("gone") }).cancel.reason).toBe("gone");
  });

  it("gives an AbortSignal that aborts at the deadline, made only when read, released by end()", async () => {
    const clock = fakeClock();
    const ctx = new RequestContext({ clock, timeoutMs: 50 });
    const signal = ctx.signal;
    expect(ctx.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    await clock.advanceAsync(60);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as { code?: string }).code).toBe(ErrorCodes.TOTAL_TIMEOUT);

    const ended = new RequestContext({ clock, timeoutMs: 50 });
    const quiet = ended.signal;
    ended.end();
    await clock.advanceAsync(60);
    expect(quiet.aborted).toBe(false);
  });

  it("gives a signal that aborts with the context's cancellation", () => {
    const ctx = new RequestContext();
    const signal = ctx.signal;
    ctx.cancel.abort(new Error("caller gone"));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe("caller gone");
  });
});

describe("calls made in a context", () => {
  it("inherit its remaining time as their deadline and forward it in x-weft-timeout-ms", async () => {
    const { client, seen, clock } = recordingClient(fakeClock(), { timeout: false });
    await runWithContext({ clock, timeoutMs: 300 }, async () => {
      clock.advance(40);
      await client.request({ path: "/a" });
    });
    expect(seen[0]!.deadline).toBe(300);
    await client.close();
    // timeout: false turns the header off too: the inherited deadline still bounds the call.
    const forwarded = recordingClient();
    await runWithContext({ clock: forwarded.clock, timeoutMs: 300 }, async () => {
      forwarded.clock.advance(40);
      await forwarded.client.request({ path: "/a" });
    });
    expect(forwarded.seen[0]!.headers["x-weft-timeout-ms"]).toBe("260");
    await forwarded.client.close();
  });

  it("keep their own totalMs when it is sooner than the inherited deadline", async () => {
    const { client, seen, clock } = recordingClient(fakeClock(), { timeout: { totalMs: 100 } });
    await runWithContext({ clock, timeoutMs: 300 }, () => client.request({ path: "/a" }));
    expect(seen[0]!.headers["x-weft-timeout-ms"]).toBe("100");
    await client.close();
  });

  it("outside any context have no inherited deadline", async () => {
    const { client, seen } = recordingClient(fakeClock(), { timeout: false });
    await client.request({ path: "/a" });
    await runWithContext({ timeoutMs: 300 }, () => runWithoutContext(() => client.request({ path: "/b" })));
    expect(seen.map((r) => r.deadline)).toEqual([Infinity, Infinity]);
    expect(seen[1]!.headers["x-weft-timeout-ms"]).toBeUndefined();
    await client.close();
  });

  it("convert the deadline when the context reads another clock", async () => {
    const contextClock = fakeClock(5000);
    const { client, seen } = recordingClient(fakeClock(10), { timeout: false });
    await runWithContext({ clock: contextClock, timeoutMs: 200 }, () => client.request({ path: "/a" }));
    expect(seen[0]!.deadline).toBe(210);
    await client.close();
  });

  it("fail at once, sending nothing, when the inherited deadline has passed", async () => {
    const { client, seen, clock } = recordingClient();
    const error = await runWithContext({ clock, timeoutMs: 10 }, async () => {
      clock.advance(20);
      return client.request({ path: "/a" }).catch((e: unknown) => e);
    });
    expect((error as { code: string }).code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect((error as Error).message).toMatch(/inherits from the request being served has passed/);
    expect(seen).toHaveLength(0);
    await client.close();
  });

  it("time out at the inherited deadline with an error that says it was inherited", async () => {
    const clock = fakeClock();
    const client = createClient({
      service: "catalog",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(() => new Promise(() => {})),
      retry: false,
      clock,
    });
    const pending = runWithContext({ clock, timeoutMs: 50 }, () =>
      client.request({ path: "/slow" }).catch((e: unknown) => e),
    );
    await clock.advanceAsync(60);
    const error = (await pending) as { code: string; message: string; timeoutMs: number };
    expect(error.code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect(error.message).toMatch(/inherited from the request being served \(50 ms left/);
    expect(error.timeoutMs).toBe(50);
    await client.close();
  });

  it("are cancelled with the context, with its reason, and release their link when they end", async () => {
    const clock = fakeClock();
    const cancels: Cancellation[] = [];
    const client = createClient({
      service: "catalog",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(
        (req) =>
          new Promise((_resolve, reject) => {
            cancels.push(req.cancel as Cancellation);
            req.cancel?.addEventListener("abort", () => reject(req.cancel?.reason));
          }),
      ),
      clock,
    });
    const ctx = new RequestContext({ clock });
    const pending = runWithContext(ctx, () => client.request({ path: "/a" }).catch((e: unknown) => e));
    await clock.advanceAsync(0);
    const gone = new Error("the caller went away");
    ctx.cancel.abort(gone);
    expect(await pending).toBe(gone);
    expect(cancels[0]!.aborted).toBe(true);

    // A call that ended no longer listens to the context: aborting it later reaches nothing.
    const fast = recordingClient(clock);
    const later = new RequestContext({ clock });
    await runWithContext(later, () => fast.client.request({ path: "/b" }));
    later.cancel.abort(new Error("late"));
    expect(fast.seen[0]!.cancel!.aborted).toBe(false);
    await fast.client.close();
    await client.close();
  });

  it("made in an already cancelled context fail with its reason without sending", async () => {
    const { client, seen } = recordingClient();
    const ctx = new RequestContext();
    ctx.cancel.abort(new Error("gone"));
    const error = await runWithContext(ctx, () => client.request({ path: "/a" }).catch((e: unknown) => e));
    expect((error as Error).message).toBe("gone");
    expect(seen).toHaveLength(0);
    await client.close();
  });

  it("currentContext() is the context the code runs in, through awaits and timers", async () => {
    const ctx = new RequestContext({ timeoutMs: 1000 });
    await runWithContext(ctx, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(currentContext()).toBe(ctx);
    });
    expect(currentContext()).toBeUndefined();
  });
});

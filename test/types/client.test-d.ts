/**
 * Type tests for the public options and events of `weft` (the client side). Checked by tsc, never
 * run: vitest's typecheck mode (vitest.config.ts, `npm test`). A line marked `@ts-expect-error`
 * must not compile; were it to compile, the directive itself is the error.
 */
import { describe, expectTypeOf, it } from "vitest";
import {
  createClient,
  createMesh,
  p2cEwma,
  roundRobin,
  staticDiscovery,
  type AttemptEndEvent,
  type BreakerStateEvent,
  type CallEndEvent,
  type Client,
  type ClientOptions,
  type Disposer,
  type MeshResponse,
  type Outcome,
  type RetryEvent,
  type RetryOptions,
} from "weft";

const service = "catalog";
const discovery = staticDiscovery(["http://127.0.0.1:8081"]);

describe("createClient options", () => {
  it("needs only a service and a discovery: every policy has a default", () => {
    expectTypeOf(createClient({ service, discovery })).toEqualTypeOf<Client>();
    // @ts-expect-error -- service is required
    createClient({ discovery });
    // @ts-expect-error -- discovery is required
    createClient({ service });
  });

  it("types each policy's options", () => {
    createClient({ service, discovery, retry: { maxAttempts: 3, backoff: { baseMs: 10 } } });
    // @ts-expect-error -- maxAttempts is a number, not a string
    createClient({ service, discovery, retry: { maxAttempts: "3" } });
    // @ts-expect-error -- backoff is { baseMs?, maxMs? }, not a number
    createClient({ service, discovery, retry: { backoff: 10 } });
    createClient({ service, discovery, timeout: { attemptMs: 500, totalMs: false } });
    // @ts-expect-error -- a timeout is milliseconds or false, not "500ms"
    createClient({ service, discovery, timeout: { attemptMs: "500ms" } });
    createClient({ service, discovery, hedge: { delayMs: 50, maxHedges: 1 } });
    createClient({ service, discovery, balancer: p2cEwma() });
    createClient({ service, discovery, balancer: roundRobin() });
    // @ts-expect-error -- a balancer is a factory's result (p2cEwma(), roundRobin() …), not its name
    createClient({ service, discovery, balancer: "roundRobin" });
    expectTypeOf<RetryOptions["maxAttempts"]>().toEqualTypeOf<number | undefined>();
  });

  it("turns a policy off with false", () => {
    createClient({
      service,
      discovery,
      breaker: false,
      retry: false,
      hedge: false,
      timeout: false,
      outlier: false,
      healthCheck: false,
      slowStart: false,
      concurrency: false,
      rateLimit: false,
      zoneAware: false,
    });
    // @ts-expect-error -- false turns a policy off; true is not an option
    createClient({ service, discovery, breaker: true });
  });

  it("refuses unknown keys on an object literal, at the top and inside a policy", () => {
    // @ts-expect-error -- a typo (retries for retry) is an error, not a policy silently left at its default
    createClient({ service, discovery, retries: { maxAttempts: 3 } });
    // @ts-expect-error -- no such retry option
    createClient({ service, discovery, retry: { attempts: 3 } });
    // @ts-expect-error -- the options are flat: no `policy` object
    createClient({ service, discovery, policy: { retry: { maxAttempts: 3 } } });
  });

  it("takes the same options, less the service, from a mesh", () => {
    const mesh = createMesh();
    expectTypeOf(mesh.client(service, { discovery, retry: false })).toEqualTypeOf<Client>();
    // @ts-expect-error -- the service is the first argument
    mesh.client(service, { service, discovery });
  });

  it("keeps the options readonly", () => {
    const options: ClientOptions = { service, discovery };
    // @ts-expect-error -- options are readonly
    options.service = "other";
  });
});

describe("client events", () => {
  const client = createClient({ service, discovery });

  it("gives each listener its event type, and returns a Disposer", () => {
    const off = client.events.onRetry((e) => {
      expectTypeOf(e).toEqualTypeOf<RetryEvent>();
      expectTypeOf(e.attempt).toEqualTypeOf<number>();
      expectTypeOf(e.delayMs).toEqualTypeOf<number>();
      expectTypeOf(e.reason).toEqualTypeOf<string>();
      expectTypeOf(e.service).toEqualTypeOf<string>();
      expectTypeOf(e.method).toEqualTypeOf<string>();
      expectTypeOf(e.path).toEqualTypeOf<string>();
    });
    expectTypeOf(off).toEqualTypeOf<Disposer>();
    client.events.onAttemptEnd((e) => {
      expectTypeOf(e).toEqualTypeOf<AttemptEndEvent>();
      expectTypeOf(e.outcome).toEqualTypeOf<Outcome>();
      expectTypeOf(e.status).toEqualTypeOf<number | undefined>();
      expectTypeOf(e.endpoint).toEqualTypeOf<string>();
    });
    client.events.onCallEnd((e) => {
      expectTypeOf(e).toEqualTypeOf<CallEndEvent>();
      expectTypeOf(e.attempts).toEqualTypeOf<number>();
    });
    client.events.onBreakerStateChange((e) => {
      expectTypeOf(e).toEqualTypeOf<BreakerStateEvent>();
      expectTypeOf(e.to).toEqualTypeOf<"closed" | "open" | "halfOpen">();
    });
    client.events.onEndpointsChanged((e) => {
      expectTypeOf(e.added).toEqualTypeOf<readonly string[]>();
    });
  });

  it("refuses a field the event does not have, and an event that does not exist", () => {
    client.events.onRetry((e) => {
      // @ts-expect-error -- a retry event has no status
      void e.status;
    });
    // @ts-expect-error -- no such event
    client.events.onRetried(() => {});
  });
});

describe("calls", () => {
  const client = createClient({ service, discovery });

  it("answers a request with a MeshResponse and fetch with a Response", () => {
    expectTypeOf(client.request({ path: "/" })).resolves.toEqualTypeOf<MeshResponse>();
    expectTypeOf(client.fetch("/")).resolves.toEqualTypeOf<Response>();
    // @ts-expect-error -- a request needs a path
    void client.request({ method: "GET" });
  });
});

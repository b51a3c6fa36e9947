/**
 * Type tests for `weft/testing` and `weft/admin`. Checked by tsc, never run (vitest typecheck, `npm test`).
 */
import { describe, expectTypeOf, it } from "vitest";
import { createClient, createMesh, staticDiscovery, type Clock, type MeshRequest, type TransportFactory } from "weft";
import { serveAdmin, type AdminServer } from "weft/admin";
import { fakeClock, mockService, type FakeClock } from "weft/testing";

describe("weft/testing", () => {
  it("makes a fake clock that is a Clock, for any option that takes one", () => {
    const clock = fakeClock();
    expectTypeOf(clock).toEqualTypeOf<FakeClock>();
    expectTypeOf(clock).toExtend<Clock>();
    expectTypeOf(clock.advanceAsync(10)).toEqualTypeOf<Promise<void>>();
    createClient({ service: "s", discovery: staticDiscovery(["http://a:1"]), clock });
  });

  it("makes a mock service that is a transport", () => {
    const transport = mockService((req) => {
      expectTypeOf(req).toEqualTypeOf<MeshRequest>();
      return { status: 200, body: "ok" };
    });
    expectTypeOf(transport).toEqualTypeOf<TransportFactory>();
    createClient({ service: "s", discovery: staticDiscovery(["http://a:1"]), transport });
    // @ts-expect-error -- a reply's status is a number
    mockService(() => ({ status: "200" }));
  });
});

describe("weft/admin", () => {
  it("serves a mesh", () => {
    expectTypeOf(serveAdmin(createMesh(), { port: 0, token: "t" })).toEqualTypeOf<Promise<AdminServer>>();
    // @ts-expect-error -- no such admin option
    void serveAdmin(createMesh(), { prot: 0 });
  });
});

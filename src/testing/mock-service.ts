/**
 * `mockService(handler)` — an in-memory transport for users' unit tests (and weft's overhead
 * benchmark): the whole stack runs, only the network is replaced. The handler sees the attempt's
 * request, endpoint included, and returns a response description or a `MeshResponse`.
 */
import { BufferedResponse } from "../core/response.js";
import type { Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse, ResponseHeaderMap } from "../core/types.js";

export interface MockReply {
  readonly status?: number;
  readonly headers?: ResponseHeaderMap;
  readonly body?: string | Uint8Array | null;
}

export type MockHandler = (req: MeshRequest) => MockReply | MeshResponse | Promise<MockReply | MeshResponse>;

/** @example createClient({ service: "s", discovery: staticDiscovery(["http://a"]), transport: mockService(() => ({ status: 200, body: "ok" })) }) */
export function mockService(handler: MockHandler): TransportFactory {
  if (typeof handler !== "function") throw new TypeError("mockService: handler must be a function (req) => reply");
  return {
    name: "mock",
    create: (): Transport => ({
      name: "mock",
      send: async (req) => toResponse(await handler(req)),
      close: async () => {},
    }),
  };
}

function toResponse(reply: MockReply | MeshResponse): MeshResponse {
  if (typeof (reply as MeshResponse).text === "function") return reply as MeshResponse;
  const r = reply as MockReply;
  return new BufferedResponse(r.status ?? 200, r.body ?? null, r.headers ?? {});
}

/**
 * `fallback(req, error)` — what a call answers when every policy has run out: a cached value, a
 * default, a degraded response (Hystrix's fallback). It runs for errors only: an HTTP error status
 * is already a response. A caller's own abort is not replaced — the caller is no longer
 * listening. What the fallback returns (a response, or `{ status, headers, body }`) goes back to
 * the caller; if it throws, that error does.
 */
import { BufferedResponse } from "../core/response.js";
import type { Layer, MeshRequest, MeshResponse, ResponseHeaderMap } from "../core/types.js";

export interface FallbackReply {
  readonly status?: number;
  readonly headers?: ResponseHeaderMap;
  readonly body?: string | Uint8Array | null;
}

export type Fallback = (
  req: MeshRequest,
  error: unknown,
) => MeshResponse | FallbackReply | Promise<MeshResponse | FallbackReply>;

export function fallbackLayer(fallback: Fallback): Layer {
  return (next) => (req) =>
    next(req).catch(async (error: unknown) => {
      if (req.cancel !== null && req.cancel.aborted && req.cancel.reason === error) throw error;
      const reply = await fallback(req, error);
      if (typeof (reply as MeshResponse).text === "function") return reply as MeshResponse;
      const r = reply as FallbackReply;
      return new BufferedResponse(r.status ?? 200, r.body ?? null, r.headers ?? {});
    });
}

/**
 * Opt-in coalescing of identical in-flight GETs (request collapsing, as in Varnish or
 * singleflight): while a GET is in flight, an identical one — same path and the same headers, so
 * calls with different credentials never share — waits for it instead of going out again. The
 * shared response body is read once into memory and each caller gets its own copy (coalesced
 * responses do not stream).
 *
 * The shared call has its own cancellation: one caller giving up does not cancel it for the
 * others; it is cancelled when every caller has given up.
 */
import { Cancellation } from "../core/cancel.js";
import { BufferedResponse } from "../core/response.js";
import type { Layer, MeshRequest, MeshResponse, ResponseHeaderMap } from "../core/types.js";

export type CoalesceKey = (req: MeshRequest) => string;

interface Shared {
  readonly result: Promise<{ status: number; headers: ResponseHeaderMap; bytes: Uint8Array }>;
  readonly cancel: Cancellation;
  waiters: number;
}

/** The default key: path plus every header, sorted. */
function defaultCoalesceKey(req: MeshRequest): string {
  const names = Object.keys(req.headers).sort();
  let key = req.path;
  for (const name of names) key += `\n${name}:${String(req.headers[name])}`;
  return key;
}

export function coalesceLayer(key: CoalesceKey = defaultCoalesceKey): Layer {
  const inflight = new Map<string, Shared>();
  return (next) => (req) => {
    if (req.method !== "GET" || req.body !== null) return next(req);
    const k = key(req);
    let shared = inflight.get(k);
    if (shared === undefined) {
      const cancel = new Cancellation();
      const created: Shared = {
        cancel,
        waiters: 0,
        result: next({ ...req, cancel }).then(async (res: MeshResponse) => ({
          status: res.status,
          headers: res.headers,
          bytes: new Uint8Array(await res.arrayBuffer()),
        })),
      };
      shared = created;
      inflight.set(k, created);
      const forget = (): void => {
        if (inflight.get(k) === created) inflight.delete(k);
      };
      created.result.then(forget, forget);
    }
    return join(shared, req);
  };
}

function join(shared: Shared, req: MeshRequest): Promise<MeshResponse> {
  shared.waiters++;
  return new Promise<MeshResponse>((resolve, reject) => {
    const own = req.cancel;
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      own?.removeEventListener("abort", onAbort);
      shared.waiters--;
    };
    const onAbort = (): void => {
      leave();
      if (shared.waiters === 0) shared.cancel.abort(own?.reason);
      reject(own?.reason);
    };
    if (own !== null) {
      if (own.aborted) return onAbort();
      own.addEventListener("abort", onAbort);
    }
    shared.result.then(
      (r) => {
        if (left) return;
        leave();
        resolve(new BufferedResponse(r.status, r.bytes, r.headers));
      },
      (error: unknown) => {
        if (left) return;
        leave();
        reject(error);
      },
    );
  });
}

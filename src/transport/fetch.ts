/**
 * `fetchTransport()` — the global `fetch` (or one you pass). For environments that patch or
 * instrument fetch; it costs more per call than undici (FACTS.md: ~0.3× undici.request). An
 * AbortController is created per attempt here — fetch accepts nothing cheaper.
 */
import type { Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse, ResponseHeaderMap } from "../core/types.js";
import { isNullBodyStatus } from "../core/response.js";
import { undiciInstrumented } from "./instrumented.js";
import { toAbortSignal } from "../core/cancel.js";

export interface FetchTransportOptions {
  /** The fetch to call. Default: `globalThis.fetch` at call time. */
  readonly fetch?: typeof globalThis.fetch;
}

/** @example createClient({ service: "catalog", discovery, transport: fetchTransport() }) */
export function fetchTransport(options: FetchTransportOptions = {}): TransportFactory {
  if (options.fetch !== undefined && typeof options.fetch !== "function") {
    throw new TypeError(`fetchTransport: fetch must be a function, got ${typeof options.fetch}`);
  }
  return { name: "fetch", create: () => new FetchTransport(options.fetch) };
}

class FetchTransport implements Transport {
  readonly name = "fetch";
  readonly instrumented = undiciInstrumented;
  readonly #fetch: typeof globalThis.fetch | undefined;

  constructor(fetchImpl: typeof globalThis.fetch | undefined) {
    this.#fetch = fetchImpl;
  }

  async send(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === null) throw new Error("fetch transport: request has no endpoint (is the balance layer missing?)");
    const signal = toAbortSignal(req.cancel);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers.set(name, value);
      else for (const v of value) headers.append(name, v);
    }
    const body = req.body;
    const init: RequestInit & { duplex?: "half" } = { method: req.method, headers, redirect: "manual", signal };
    if (body !== null) {
      if (typeof body === "string" || body instanceof Uint8Array) init.body = body;
      else {
        init.body = body.stream as ReadableStream<Uint8Array>;
        init.duplex = "half";
      }
    }
    const fetchImpl = this.#fetch ?? globalThis.fetch;
    try {
      return new FetchResponse(await fetchImpl(endpoint.url + req.path, init));
    } catch (error) {
      // fetch rejects with its own AbortError; report the reason weft aborted with.
      if (req.cancel?.aborted === true) throw req.cancel.reason;
      throw error;
    }
  }

  async close(): Promise<void> {}
}

class FetchResponse implements MeshResponse {
  readonly #res: Response;
  #headers: ResponseHeaderMap | undefined;

  constructor(res: Response) {
    this.#res = res;
  }

  get status(): number {
    return this.#res.status;
  }

  get headers(): ResponseHeaderMap {
    this.#headers ??= headersToObject(this.#res.headers);
    return this.#headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return isNullBodyStatus(this.#res.status) ? null : (this.#res.body as ReadableStream<Uint8Array> | null);
  }

  get bodyUsed(): boolean {
    return this.#res.bodyUsed;
  }

  text(): Promise<string> {
    return this.#res.text();
  }

  json<T = unknown>(): Promise<T> {
    return this.#res.json() as Promise<T>;
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#res.arrayBuffer();
  }

  async dump(): Promise<void> {
    if (!this.#res.bodyUsed) await this.#res.body?.cancel().catch(() => {});
  }
}

/** Plain lower-case header object from `Headers`; `set-cookie` stays a list. */
function headersToObject(headers: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  headers.forEach((value, name) => {
    if (name !== "set-cookie") out[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

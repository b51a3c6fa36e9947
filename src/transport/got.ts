/**
 * `gotTransport(gotInstance)` — send through a user's own got instance, keeping its hooks
 * (auth, logging, custom agents). weft forces `retry.limit: 0` (and a `calculateDelay` of 0) and `throwHttpErrors: false`:
 * retries belong to weft's budgeted retry layer (two retry layers multiply attempts), and an
 * HTTP error status is a response for weft's classifier to judge. Responses are buffered
 * (`responseType: "buffer"`).
 */
import type { Got } from "got";
import { Readable } from "node:stream";
import { BufferedResponse } from "../core/response.js";
import type { Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import { httpInstrumented } from "./instrumented.js";
import { toAbortSignal } from "../core/cancel.js";

/** @example import got from "got"; createClient({ service, discovery, transport: gotTransport(got.extend({ hooks })) }) */
export function gotTransport(instance: Got): TransportFactory {
  if (typeof instance !== "function" || typeof (instance as { extend?: unknown }).extend !== "function") {
    throw new TypeError("gotTransport: expected a got instance (the default export of 'got' or got.extend(…))");
  }
  return { name: "got", create: () => new GotTransport(instance) };
}

class GotTransport implements Transport {
  readonly name = "got";
  readonly instrumented = httpInstrumented;
  readonly #got: Got;

  constructor(instance: Got) {
    // calculateDelay too: a user's calculateDelay that returns a delay would retry past limit 0.
    this.#got = instance.extend({
      retry: { limit: 0, calculateDelay: () => 0 },
      throwHttpErrors: false,
      responseType: "buffer",
    });
  }

  async send(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === null) throw new Error("got transport: request has no endpoint (is the balance layer missing?)");
    const signal = toAbortSignal(req.cancel);
    const body = req.body;
    let gotBody: string | Buffer | Readable | undefined;
    if (typeof body === "string") gotBody = body;
    else if (body instanceof Uint8Array) gotBody = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else if (body !== null) {
      gotBody = body.stream instanceof ReadableStream ? Readable.fromWeb(body.stream) : Readable.from(body.stream);
    }
    try {
      const res = await this.#got(endpoint.url + req.path, {
        method: req.method as "GET",
        // A copy: got's hooks may write into the headers object.
        headers: { ...(req.headers as Record<string, string | string[]>) },
        body: gotBody,
        signal,
        responseType: "buffer",
        allowGetBody: gotBody !== undefined,
      });
      return new BufferedResponse(res.statusCode, new Uint8Array(res.body), res.headers);
    } catch (error) {
      if (req.cancel?.aborted === true) throw req.cancel.reason;
      throw error;
    }
  }

  async close(): Promise<void> {}
}

/** Request-body helpers shared by the transports. */
import { Readable } from "node:stream";
import type { MeshBody } from "../core/types.js";

/** The body as Node.js transports take it: a string, bytes or a stream read once. */
export function nodeBody(body: MeshBody | null): string | Uint8Array | Readable | AsyncIterable<Uint8Array> | null {
  if (body === null || typeof body === "string" || body instanceof Uint8Array) return body;
  const stream = body.stream;
  return stream instanceof ReadableStream ? Readable.fromWeb(stream) : stream;
}

/**
 * Turning what callers pass as a request body into what the stack carries. Strings and bytes are
 * kept as they are (replayable: a retry or hedge can send them again); `URLSearchParams`,
 * `FormData` and `Blob` are serialized once into bytes (replayable too); a `ReadableStream` or
 * async iterable can be sent only once.
 */
import type { MeshBody } from "../core/types.js";

export type BodyInit =
  | string
  | Uint8Array
  | ArrayBuffer
  | DataView
  | URLSearchParams
  | FormData
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

export interface EncodedBody {
  readonly body: MeshBody | null;
  /** The content type the body implies, when the caller set none. */
  readonly contentType: string | undefined;
}

const NO_BODY: EncodedBody = Object.freeze({ body: null, contentType: undefined });

/** Synchronous for the common bodies; a promise only for FormData and Blob. */
export function encodeBody(input: unknown): EncodedBody | Promise<EncodedBody> {
  if (input === undefined || input === null) return NO_BODY;
  if (typeof input === "string") return { body: input, contentType: "text/plain;charset=UTF-8" };
  if (input instanceof Uint8Array) return { body: input, contentType: undefined };
  if (input instanceof ArrayBuffer) return { body: new Uint8Array(input), contentType: undefined };
  if (ArrayBuffer.isView(input))
    return { body: new Uint8Array(input.buffer, input.byteOffset, input.byteLength), contentType: undefined };
  if (input instanceof URLSearchParams)
    return { body: input.toString(), contentType: "application/x-www-form-urlencoded;charset=UTF-8" };
  if (input instanceof FormData || input instanceof Blob) return serialize(input);
  if (input instanceof ReadableStream)
    return { body: { kind: "stream", stream: input as ReadableStream<Uint8Array> }, contentType: undefined };
  if (typeof (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") {
    return { body: { kind: "stream", stream: input as AsyncIterable<Uint8Array> }, contentType: undefined };
  }
  throw new TypeError(
    `request body must be a string, Uint8Array/Buffer, ArrayBuffer, URLSearchParams, FormData, Blob, ReadableStream or async iterable; got ${Object.prototype.toString.call(input)}`,
  );
}

/** FormData and Blob: let the platform encode them (multipart boundary included), once. */
async function serialize(input: FormData | Blob): Promise<EncodedBody> {
  const encoded = new Response(input);
  const bytes = new Uint8Array(await encoded.arrayBuffer());
  return { body: bytes, contentType: encoded.headers.get("content-type") ?? undefined };
}

/**
 * gRPC metadata as the headers of a weft request and response, and back. On the wire gRPC
 * metadata are HTTP/2 headers, binary values (`-bin` keys) base64-encoded: the same form is kept
 * in the envelope, so middleware, routes (header matches) and the trace propagator see metadata
 * as the headers they are, and `traceparent` injected by the attempt span goes out as metadata.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { HeaderMap, ResponseHeaderMap } from "../core/types.js";
import type { Grpc } from "./load.js";

/**
 * The content type every gRPC request carries: how telemetry tells a gRPC call from an HTTP one
 * (`rpc.*` span attributes). Not sent as metadata: grpc-js writes its own.
 */
const GRPC_CONTENT_TYPE = "application/grpc";

/** Headers grpc-js writes itself (or that HTTP/2 forbids in metadata): never copied into metadata. */
const RESERVED = new Set(["content-type", "te", "user-agent", "host", "grpc-timeout", "grpc-encoding"]);

/** The request headers a caller's metadata become (`-bin` values base64, as on the wire). */
export function headersOfMetadata(metadata: Metadata | undefined): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { "content-type": GRPC_CONTENT_TYPE };
  if (metadata === undefined) return headers;
  const wire = metadata.toHttp2Headers();
  for (const name in wire) {
    const value = wire[name];
    if (value === undefined || RESERVED.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return headers;
}

/** The metadata an attempt sends: the request's headers but the reserved ones and weft's deadline header (sent as `grpc-timeout`). */
export function metadataOfHeaders(grpc: Grpc, headers: HeaderMap, deadlineHeader: string | false): Metadata {
  const metadata = new grpc.Metadata();
  for (const name in headers) {
    if (RESERVED.has(name) || name === deadlineHeader || name.charCodeAt(0) === 58 /* ":" */) continue;
    const value = headers[name] as string | readonly string[];
    const binary = name.endsWith("-bin");
    if (typeof value === "string") metadata.add(name, binary ? Buffer.from(value, "base64") : value);
    else for (const v of value) metadata.add(name, binary ? Buffer.from(v, "base64") : v);
  }
  return metadata;
}

/** Response headers from the response's header metadata and trailers (trailers win on a repeated key). */
export function headersOfResponse(
  headers: Metadata | null,
  trailers: Metadata | null,
  extra: Readonly<Record<string, string | undefined>>,
): ResponseHeaderMap {
  const out: Record<string, string | string[] | undefined> = {};
  for (const metadata of [headers, trailers]) {
    if (metadata === null) continue;
    const wire = metadata.toHttp2Headers();
    for (const name in wire) {
      const value = wire[name];
      if (value !== undefined) out[name] = Array.isArray(value) ? value.map(String) : String(value);
    }
  }
  for (const name in extra) if (extra[name] !== undefined) out[name] = extra[name];
  return out;
}

/**
 * gRPC calls in the spans, by the RPC semantic conventions instead of HTTP's: a request whose
 * `content-type` is `application/grpc…` (what every gRPC request carries; `grpcClient` sets it)
 * and whose path is `/{package.Service}/{Method}` is named `{package.Service}/{Method}`, with
 * `rpc.system` = `grpc`, `rpc.service`, `rpc.method` and, once it answered, `rpc.grpc.status_code`
 * (from the response's `grpc-status`); any status but OK is an error, as the conventions ask of
 * client spans. Read only while tracing is on: a string test per span.
 */
import { SpanStatusCode, type Attributes, type Span } from "@opentelemetry/api";
import type { MeshRequest, MeshResponse } from "../core/types.js";

export interface RpcName {
  /** `package.Service`. */
  readonly service: string;
  readonly method: string;
}

/** The service and method of a gRPC request; null for any other request. */
export function rpcOf(req: MeshRequest): RpcName | null {
  const type = req.headers["content-type"];
  if (typeof type !== "string" || !type.startsWith("application/grpc")) return null;
  return rpcOfPath(req.path);
}

/** The service and method of a gRPC path (`/package.Service/Method`); null for any other path. */
export function rpcOfPath(path: string): RpcName | null {
  const slash = path.indexOf("/", 1);
  if (path.charCodeAt(0) !== 47 /* "/" */ || slash === -1 || slash === path.length - 1) return null;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** The span name the conventions give a gRPC call. */
export function rpcSpanName(rpc: RpcName): string {
  return `${rpc.service}/${rpc.method}`;
}

export function rpcAttributes(rpc: RpcName): Attributes {
  return { "rpc.system": "grpc", "rpc.service": rpc.service, "rpc.method": rpc.method };
}

/** A gRPC response's status code: `grpc-status`, else read from the HTTP status (200: OK, other: UNKNOWN). */
export function rpcStatusCode(res: MeshResponse): number {
  const header = res.headers["grpc-status"];
  return typeof header === "string" ? Number(header) : res.status < 300 ? 0 : 2;
}

/** Ends a gRPC span with its status code (`rpcStatusCode`); any code but OK is an error. */
export function endRpc(span: Span, res: MeshResponse): void {
  const code = rpcStatusCode(res);
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) {
    span.setAttribute("error.type", String(code));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

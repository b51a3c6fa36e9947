/**
 * gRPC calls in the spans and metrics, by the RPC semantic conventions instead of HTTP's: a
 * request whose `content-type` is `application/grpc…` (what every gRPC request carries;
 * `grpcClient` sets it) and whose path is `/{package.Service}/{Method}` is named
 * `{package.Service}/{Method}`; any status but OK is an error, as the conventions ask of client
 * spans. Read only while tracing is on: a string test per span.
 *
 * Which conventions: by default those of semconv 1.37 and before, what OpenTelemetry's own
 * instrumentations keep emitting until asked — `rpc.system` = `grpc`, `rpc.service`, `rpc.method`
 * (the method alone), `rpc.grpc.status_code` (a number), `error.type` the code, the histogram
 * `rpc.client.duration` in ms. `OTEL_SEMCONV_STABILITY_OPT_IN` with `rpc` switches to the newer
 * ones (the release candidate): `rpc.system.name`, `rpc.method` = `package.Service/Method`,
 * `rpc.response.status_code` = the code's name (`UNAVAILABLE`), `error.type` the name,
 * `rpc.client.call.duration` in seconds; `rpc/dup` emits both — where a key is in both
 * (`rpc.method`, `error.type`) the newer value wins, and both histograms are recorded. Read when a
 * client is made, as the conventions ask of instrumentations.
 */
import { SpanStatusCode, type Attributes, type Span } from "@opentelemetry/api";
import { GRPC_STATUS_NAMES } from "../core/grpc-status.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";

/** Which RPC conventions to emit: the older ones (semconv ≤ 1.37), the newer ones, or both. */
export interface RpcConventions {
  readonly legacy: boolean;
  readonly stable: boolean;
}

/** From `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list): `rpc/dup` both, `rpc` the newer, else the older. */
export function rpcConventions(optIn: string | undefined = process.env.OTEL_SEMCONV_STABILITY_OPT_IN): RpcConventions {
  const values = new Set((optIn ?? "").split(",").map((v) => v.trim().toLowerCase()));
  if (values.has("rpc/dup")) return BOTH;
  return values.has("rpc") ? STABLE : LEGACY;
}

const LEGACY: RpcConventions = Object.freeze({ legacy: true, stable: false });
const STABLE: RpcConventions = Object.freeze({ legacy: false, stable: true });
const BOTH: RpcConventions = Object.freeze({ legacy: true, stable: true });

/** A status code's name (`UNAVAILABLE`), `_OTHER` past the known ones. */
function rpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? "_OTHER";
}

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

/** The attributes naming a gRPC call, by `conventions`. */
export function rpcAttributes(rpc: RpcName, conventions: RpcConventions): Attributes {
  const attributes: Attributes = {};
  if (conventions.legacy) {
    attributes["rpc.system"] = "grpc";
    attributes["rpc.service"] = rpc.service;
    attributes["rpc.method"] = rpc.method;
  }
  if (conventions.stable) {
    attributes["rpc.system.name"] = "grpc";
    attributes["rpc.method"] = rpcSpanName(rpc);
  }
  return attributes;
}

/** The status attributes of a gRPC call that answered with `code`, by `conventions` (`error.type` when not OK). */
export function rpcStatusAttributes(code: number, conventions: RpcConventions, into: Attributes): void {
  if (conventions.legacy) {
    into["rpc.grpc.status_code"] = code;
    if (code !== 0) into["error.type"] = String(code);
  }
  if (conventions.stable) {
    into["rpc.response.status_code"] = rpcStatusName(code);
    if (code !== 0) into["error.type"] = rpcStatusName(code);
  }
}

/** A gRPC response's status code: `grpc-status`, else read from the HTTP status (200: OK, other: UNKNOWN). */
export function rpcStatusCode(res: MeshResponse): number {
  const header = res.headers["grpc-status"];
  return typeof header === "string" ? Number(header) : res.status < 300 ? 0 : 2;
}

/** Ends a gRPC span with its status code (`rpcStatusCode`); any code but OK is an error. */
export function endRpc(span: Span, res: MeshResponse, conventions: RpcConventions): void {
  const code = rpcStatusCode(res);
  const attributes: Attributes = {};
  rpcStatusAttributes(code, conventions, attributes);
  span.setAttributes(attributes);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR });
}

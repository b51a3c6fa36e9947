/**
 * What a grpc-js caller expects when a call fails: a `ServiceError` — an `Error` with the status's
 * `code`, `details` and trailing `metadata`, its message `"14 UNAVAILABLE: details"` — whether the
 * server said so or weft gave up (a deadline, no endpoint, a limit). weft's own error stays
 * reachable as its `cause`.
 */
import type { Metadata, ServiceError, StatusObject } from "@grpc/grpc-js";
import type { Grpc } from "./load.js";
import { Code, GRPC_STATUS_NAMES, codeOfError } from "./status.js";

/** grpc-js's `ServiceError` for `status`. */
export function serviceError(status: StatusObject, cause?: unknown): ServiceError {
  const message = `${status.code} ${GRPC_STATUS_NAMES[status.code] ?? "UNKNOWN"}: ${status.details}`;
  const error = cause === undefined ? new Error(message) : new Error(message, { cause });
  return Object.assign(error, { code: status.code, details: status.details, metadata: status.metadata });
}

/**
 * The status of a call the stack failed with `error`. `cancelled` is how the caller cancels it
 * (`call.cancel()`, its signal): when that is what `error` is, the status is grpc-js's own
 * "Cancelled on client".
 */
export function statusOfError(
  grpc: Grpc,
  error: unknown,
  cancelled: { readonly aborted: boolean; readonly reason: unknown } | null | undefined,
): StatusObject {
  const metadata: Metadata = new grpc.Metadata();
  if (cancelled?.aborted === true && cancelled.reason === error)
    return { code: Code.CANCELLED, details: "Cancelled on client", metadata };
  const status = grpcStatusOf(error);
  if (status !== undefined) return status;
  // weft gave up (attempts, budget): its reason, then what the last attempt's status said.
  const cause = grpcStatusOf((error as { cause?: unknown } | null)?.cause);
  const reason = error instanceof Error ? error.message : String(error);
  const details = cause === undefined ? reason : `${reason}: ${cause.details}`;
  return { code: codeOfError(error), details, metadata: cause?.metadata ?? metadata };
}

function grpcStatusOf(error: unknown): StatusObject | undefined {
  const status = (error as { grpcStatus?: StatusObject } | null | undefined)?.grpcStatus;
  return status !== undefined && typeof status.code === "number" ? status : undefined;
}

/**
 * A service name that becomes part of an etcd key or a file path must stay inside it: no `/`
 * (another key, another directory), no `..`, nothing a shell or a URL would need to quote. The
 * name is the client's `service` option, so the message names that option.
 */
import { fail } from "../core/validate.js";

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Throws `InvalidOptionsError` (option `service`) unless `service` matches
 * /^[A-Za-z0-9][A-Za-z0-9._-]*$/; `source` names who needs it in the message.
 * @example const key = prefix + checkServiceName("etcdConfig", service);
 */
export function checkServiceName(source: string, service: unknown): string {
  if (typeof service !== "string" || !SERVICE_NAME.test(service)) {
    fail(
      "service",
      service,
      `a name matching ${String(SERVICE_NAME)} (letters, digits, ".", "_", "-"), since ${source} makes it part of a key or path`,
    );
  }
  return service;
}

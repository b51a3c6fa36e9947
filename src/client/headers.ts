/** Header normalization: lower-case names, repeated headers as arrays. */
import type { HeaderMap, ResponseHeaderMap } from "../core/types.js";

export type HeadersInput =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>> | Iterable<readonly [string, string]>;

export const EMPTY_HEADERS: HeaderMap = Object.freeze({});

export function normalizeHeaders(input: HeadersInput | undefined): HeaderMap {
  if (input === undefined || input === null) return EMPTY_HEADERS;
  const out: Record<string, string | string[]> = {};
  if (input instanceof Headers) {
    input.forEach((value, name) => {
      if (name !== "set-cookie") out[name] = value;
    });
    const cookies = input.getSetCookie();
    if (cookies.length > 0) out["set-cookie"] = cookies;
    return out;
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const pair of input as Iterable<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new TypeError("headers: each entry must be a [name, value] pair");
      add(out, String(pair[0]).toLowerCase(), String(pair[1]));
    }
    return out;
  }
  for (const [name, value] of Object.entries(input as Record<string, unknown>)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (Array.isArray(value)) for (const v of value) add(out, key, String(v));
    // A header value of another type is stringified, as fetch's Headers does.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    else add(out, key, String(value));
  }
  return out;
}

function add(out: Record<string, string | string[]>, name: string, value: string): void {
  const existing = out[name];
  if (existing === undefined) out[name] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else out[name] = [existing, value];
}

/** `[name, value]` pairs for the `Headers`/`Response` constructors. */
export function headerPairs(headers: ResponseHeaderMap): [string, string][] {
  const pairs: [string, string][] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === "string") pairs.push([name, value]);
    else for (const v of value) pairs.push([name, v]);
  }
  return pairs;
}

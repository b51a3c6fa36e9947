/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns the wait in ms, or
 * `undefined` when the header is absent or unreadable (the caller then uses its backoff).
 * Delay-seconds may carry a fraction (`0.25`), read to the millisecond: RFC 9110 has whole
 * seconds only, but a gRPC server's pushback (`grpc-retry-pushback-ms`) arrives here as one.
 */
export function parseRetryAfter(value: string | string[] | undefined, wallNowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // 0.007 * 1000 is 7.000000000000001: a millionth off before rounding up.
  if (/^\d+\.\d+$/.test(text)) return Math.max(0, Math.ceil(Number(text) * 1000 - 1e-6));
  // An HTTP-date always names the day of the week and GMT; Date.parse reads all three formats.
  if (!/GMT$/i.test(text) && !/^\w+, /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - wallNowMs);
}

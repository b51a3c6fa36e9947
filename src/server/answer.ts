/**
 * The answers `weft/server` gives itself — health checks, and the requests it refuses before any
 * handler runs (shed, expired, unauthorized, an unreadable deadline). Each is a small JSON body
 * that says what happened and why, so a human reading a 503 in a log knows it was load shedding
 * and not a crash. Adapters write them: `writeAnswer` for `node:http` and Express, Fastify's
 * `reply` for Fastify.
 */
import type { ServerResponse } from "node:http";

export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON text. */
  readonly body: string;
}

/** `error` is a stable word for machines (`shed`, `deadline_expired`, …); `message` is for people. */
export function jsonAnswer(
  status: number,
  fields: Readonly<Record<string, unknown>>,
  headers: Readonly<Record<string, string>> = {},
): Answer {
  const body = JSON.stringify(fields);
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
    body,
  };
}

/** Writes an answer on a `node:http` response (no body for HEAD). */
export function writeAnswer(res: ServerResponse, answer: Answer, head: boolean): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(answer.status, { ...answer.headers, "content-length": String(Buffer.byteLength(answer.body)) });
  res.end(head ? undefined : answer.body);
}

/**
 * `node:http` and Connect/Express adapters: `server.handler(fn)` wraps a request listener;
 * `server.middleware` is a `(req, res, next)` middleware. Both answer what `admit` answers
 * (health checks, refusals) on the response itself and run the rest inside the request context.
 *
 * `handler(fn)` also catches what `fn` throws or rejects with: the caller gets a 500 (or, once
 * headers are out, a cut connection) and the error goes to `onWarning`, instead of the whole
 * process going down for one request — what every framework does, for plain `node:http` too. An
 * inherited deadline that ran out in one of the handler's calls is a 504 instead, with no warning.
 * (Express and Fastify route errors to their own error handlers: map `WEFT_ERR_TOTAL_TIMEOUT` to
 * 504 there.)
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCodes } from "../core/errors.js";
import { writeAnswer, jsonAnswer, type Answer } from "./answer.js";
import { InboundContext } from "./context.js";
import type { Inbound } from "./inbound.js";

/** A `node:http` request listener; it may return a promise. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Connect/Express middleware. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

export function nodeHandler(inbound: Inbound, fn: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof fn !== "function")
    throw new TypeError(`inbound.handler(fn): fn must be a request listener (req, res) => void, got ${typeof fn}`);
  return (req, res) => {
    const decided = inbound.admit(req, res);
    if (!(decided instanceof InboundContext)) return answer(res, decided, req.method === "HEAD");
    keepContext(inbound, decided, req);
    inbound.run(decided, () => callHandler(inbound, decided, fn, req, res));
  };
}

export function connectMiddleware(inbound: Inbound): Middleware {
  return (req, res, next) => {
    const decided = inbound.admit(req, res);
    if (!(decided instanceof InboundContext)) return answer(res, decided, req.method === "HEAD");
    keepContext(inbound, decided, req);
    inbound.run(decided, next);
  };
}

/**
 * Code that reads the body through events (`req.on("end", …)`: busboy, multer, a hand-written
 * reader, a Connect body parser calling `next()` from `end`) runs in the async context Node emits
 * them in — the connection's, not the request's — so the context would be lost from there on.
 * Emitting the request's events inside its context keeps it.
 */
function keepContext(inbound: Inbound, ctx: InboundContext, req: IncomingMessage): void {
  const emit = req.emit;
  req.emit = function (this: IncomingMessage, ...args: Parameters<IncomingMessage["emit"]>) {
    return inbound.run(ctx, () => emit.apply(this, args));
  } as IncomingMessage["emit"];
}

function answer(res: ServerResponse, decided: Answer | Promise<Answer>, head: boolean): void {
  if (decided instanceof Promise) {
    decided.then(
      (a) => writeAnswer(res, a, head),
      () => writeAnswer(res, jsonAnswer(500, { error: "internal", message: "the health check failed" }), head),
    );
  } else writeAnswer(res, decided, head);
}

function callHandler(
  inbound: Inbound,
  ctx: InboundContext,
  fn: RequestHandler,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  let result: unknown;
  try {
    result = fn(req, res);
  } catch (error) {
    return failed(inbound, ctx, req, res, error);
  }
  if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
    (result as PromiseLike<unknown>).then(undefined, (error: unknown) => failed(inbound, ctx, req, res, error));
  }
}

function failed(
  inbound: Inbound,
  ctx: InboundContext,
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
): void {
  // The request's own deadline ran out inside a call it made: that is a 504 for its caller (a
  // timeout, which its retries and breakers treat as one), not a 500 and not a bug to report.
  if ((error as { code?: unknown } | null)?.code === ErrorCodes.TOTAL_TIMEOUT && ctx.remainingMs() <= 0) {
    if (!res.headersSent)
      writeAnswer(
        res,
        jsonAnswer(504, {
          error: "deadline_exceeded",
          message: "the request's deadline passed while it was being handled",
        }),
        req.method === "HEAD",
      );
    else res.destroy();
    return;
  }
  // A handler failing because its caller went away (its calls were cancelled) is no news.
  if (!ctx.aborted) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    inbound.config.warn(`weft/server ${inbound.service}: the handler of ${ctx.method} ${ctx.path} failed: ${text}`);
  }
  if (!res.headersSent)
    writeAnswer(
      res,
      jsonAnswer(500, { error: "internal", message: "the request handler failed" }),
      req.method === "HEAD",
    );
  else res.destroy(error instanceof Error ? error : undefined);
}

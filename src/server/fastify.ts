/**
 * The Fastify 5 adapter: a plugin (`fastify.register(server.fastify)`) that skips Fastify's
 * encapsulation, so it covers every route of the instance it is registered on.
 *
 * - `onRequest` admits or answers: refusals and health checks go out through `reply`, so Fastify's
 *   own lifecycle (its hooks, its logging) sees them; an admitted request continues inside its
 *   context, and its route template (`routeOptions.url`) names it in metrics and the span.
 * - `preHandler` enters the context again: Fastify parses bodies from stream events, which run in
 *   the connection's async context, so without this the handler would start outside the request's
 *   (the same reason `@fastify/request-context` re-enters there).
 *
 * Structural types only: Fastify is the application's dependency, not weft's.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { InboundContext } from "./context.js";
import type { Inbound } from "./inbound.js";

interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly routeOptions?: { readonly url?: string };
}
interface FastifyReplyLike {
  readonly raw: ServerResponse;
  code(status: number): FastifyReplyLike;
  headers(headers: Readonly<Record<string, string>>): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
}
type HookDone = (error?: Error) => void;
interface FastifyInstanceLike {
  readonly server: Server;
  addHook(
    name: "onRequest" | "preHandler",
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: HookDone) => void,
  ): unknown;
}

/** A Fastify plugin (callback style), marked to skip encapsulation as `fastify-plugin` would. */
export type FastifyPlugin = ((
  fastify: FastifyInstanceLike,
  options: unknown,
  done: (error?: Error) => void,
) => void) & {
  readonly [key: symbol]: unknown;
};

const CONTEXT = Symbol("weft.server.fastifyContext");
type Tracked = FastifyRequestLike & { [CONTEXT]?: InboundContext };

export function fastifyPlugin(inbound: Inbound): FastifyPlugin {
  const plugin = (fastify: FastifyInstanceLike, _options: unknown, done: (error?: Error) => void): void => {
    inbound.attach(fastify.server);
    fastify.addHook("onRequest", (request, reply, next) => {
      const decided = inbound.admit(request.raw, reply.raw);
      if (decided instanceof InboundContext) {
        decided.route = request.routeOptions?.url;
        (request as Tracked)[CONTEXT] = decided;
        inbound.run(decided, next);
        return;
      }
      void Promise.resolve(decided).then((answer) =>
        reply.code(answer.status).headers(answer.headers).send(answer.body),
      );
    });
    fastify.addHook("preHandler", (request, _reply, next) => {
      const ctx = (request as Tracked)[CONTEXT];
      if (ctx === undefined) next();
      else inbound.run(ctx, next);
    });
    done();
  };
  return Object.assign(plugin, {
    [Symbol.for("skip-override")]: true,
    [Symbol.for("fastify.display-name")]: "weft-inbound",
  });
}

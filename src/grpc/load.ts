/**
 * `@grpc/grpc-js` is an optional peer dependency: weft works without it, and only `grpcClient()`
 * loads it, synchronously, the first time it is called — never at import — through Node's
 * `require`, so it is the application's one copy (the same instance its `import` of grpc-js gets:
 * grpc-js is CommonJS, and Node keeps one module per file), whose `Metadata` and credentials
 * classes grpc-js's own `instanceof` checks accept. Everything else in src/grpc imports grpc-js
 * as types only, and no other folder imports it (eslint.config.js).
 */
import { createRequire } from "node:module";
import type * as GrpcJs from "@grpc/grpc-js";
import { InvalidOptionsError } from "../core/errors.js";

/** The `@grpc/grpc-js` module. */
export type Grpc = typeof GrpcJs;

let loaded: Grpc | undefined;

/** The application's `@grpc/grpc-js`, loaded on first use; a clear error when it is not installed. */
export function loadGrpc(): Grpc {
  if (loaded !== undefined) return loaded;
  let module: Grpc;
  try {
    module = createRequire(import.meta.url)("@grpc/grpc-js") as Grpc;
  } catch (error) {
    throw new InvalidOptionsError(
      "grpc",
      `grpcClient needs @grpc/grpc-js, an optional peer dependency of weft, which could not be loaded (${String((error as Error).message ?? error)}): npm install @grpc/grpc-js`,
    );
  }
  loaded = module;
  return module;
}

/**
 * `weft/grpc` — gRPC through weft's stack (`grpcClient`). Re-exports only. Its own entry point:
 * `@grpc/grpc-js` is an optional peer dependency, and only this entry's types name it, so an
 * application without it type-checks `weft` whatever its `skipLibCheck`.
 */
export { grpcClient } from "./client.js";
export type { GrpcClientControls, GrpcServiceClient, UntypedGrpcMethods } from "./client.js";
export type {
  GrpcClientOptions,
  GrpcOptions,
  GrpcMethodConfig,
  GrpcCallOptions,
  GrpcCallback,
  GrpcService,
  GrpcServiceDefinition,
  GrpcMethodDefinition,
  GrpcUnaryMethod,
  GrpcServerStreamMethod,
  GrpcClientStreamMethod,
  GrpcBidiStreamMethod,
} from "./options.js";

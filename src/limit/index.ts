/** The limit folder's public types (src/index.ts re-exports them); the client imports the layers from their files. */
export type { ConcurrencyOptions, RateLimitOptions } from "./options.js";
export type { Fallback, FallbackReply } from "./fallback.js";
export type { CoalesceKey } from "./coalesce.js";

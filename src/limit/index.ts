/** Client-side limits: bulkhead, adaptive concurrency (Gradient2), rate limit; fallback and coalescing. Re-exports only. */
export { concurrencyLayer } from "./concurrency.js";
export type { ConcurrencyLayerContext, ConcurrencyLimiter, ConcurrencySnapshot } from "./concurrency.js";
export { rateLimitLayer } from "./rate-limit.js";
export type { RateLimitLayerContext, RateLimiter, RateLimitSnapshot } from "./rate-limit.js";
export { normalizeConcurrencyOptions, normalizeRateLimitOptions, CONCURRENCY_DEFAULTS } from "./options.js";
export type {
  ConcurrencyOptions,
  ConcurrencyConfig,
  FixedConcurrencyConfig,
  AdaptiveConcurrencyConfig,
  RateLimitOptions,
  RateLimitConfig,
} from "./options.js";
export { Gradient2Limit, DEFAULT_GRADIENT2 } from "./gradient.js";
export type { Gradient2Config } from "./gradient.js";
export { TokenBucket } from "./token-bucket.js";
export type { TokenBucketConfig } from "./token-bucket.js";
export { fallbackLayer } from "./fallback.js";
export type { Fallback, FallbackReply } from "./fallback.js";
export { coalesceLayer, defaultCoalesceKey } from "./coalesce.js";
export type { CoalesceKey } from "./coalesce.js";

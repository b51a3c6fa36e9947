export { breakerLayer } from "./breaker.js";
export type { BreakerLayer, BreakerLayerContext, BreakerSnapshot, EndpointBreakerSnapshot } from "./breaker.js";
export { BREAKER_DEFAULTS, normalizeBreakerOptions } from "./breaker-options.js";
export type { BreakerConfig, BreakerOptions } from "./breaker-options.js";

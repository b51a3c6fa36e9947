export { breakerLayer } from "./breaker.js";
export type { BreakerLayer, BreakerLayerContext, BreakerSnapshot, EndpointBreakerSnapshot } from "./breaker.js";
export { BREAKER_DEFAULTS, normalizeBreakerOptions } from "./breaker-options.js";
export type { BreakerConfig, BreakerOptions } from "./breaker-options.js";
export { OutlierDetector } from "./outlier.js";
export type { EjectionReason, OutlierHooks, OutlierSnapshot } from "./outlier.js";
export { OUTLIER_DEFAULTS, normalizeOutlierOptions } from "./outlier-options.js";
export type { OutlierConfig, OutlierOptions } from "./outlier-options.js";
export { ejectionMs, mayEject, raisedMultiplier, successRateThreshold } from "./ejection.js";
export {
  NOT_RAMPING,
  SLOW_START_DEFAULTS,
  normalizeSlowStartOptions,
  rampStart,
  slowStartFactor,
  slowStartWeigher,
} from "./slow-start.js";
export type { SlowStartConfig, SlowStartOptions } from "./slow-start.js";
export { HEALTH_CHECK_CANCELLED, HEALTH_CHECK_TIMED_OUT, HealthChecker } from "./health-check.js";
export type { HealthCheckerContext, HealthCheckProbe, HealthCheckSend, HealthCheckSnapshot } from "./health-check.js";
export { HEALTH_CHECK_DEFAULTS, normalizeHealthCheckOptions } from "./health-check-options.js";
export type { HealthCheckConfig, HealthCheckOptions } from "./health-check-options.js";

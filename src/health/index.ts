/** The health folder's public types (src/index.ts re-exports them); the client imports the gates and layers from their files. */
export type { BreakerOptions } from "./breaker-options.js";
export type { OutlierOptions } from "./outlier-options.js";
export type { SlowStartOptions } from "./slow-start.js";
export type { HealthCheckOptions } from "./health-check-options.js";

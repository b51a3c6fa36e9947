export { callSpanLayer } from "./call-span.js";
export { attemptSpanLayer } from "./attempt-span.js";
export { tracingEnabled, errorType } from "./tracing.js";
export { clientMetrics, weftMeter } from "./metrics.js";
export type { ClientMetricsOptions, MetricsSnapshot } from "./metrics.js";
export { DURATION_BUCKETS_S, METER_NAME, METER_VERSION, metricMethod } from "./metrics-instruments.js";
export type { MeterProvider } from "@opentelemetry/api";

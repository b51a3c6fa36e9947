/**
 * What the rest of src/ takes from @opentelemetry/api, by type: only src/telemetry/ imports the
 * API itself (the import walls in eslint.config.js). The layers and meters are imported from
 * their own files (call-span.ts, attempt-span.ts, metrics.ts, server.ts).
 */
export type { MeterProvider } from "@opentelemetry/api";

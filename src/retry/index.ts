/** The retry folder's public types (src/index.ts re-exports them); the client imports the layers from their files. */
export type { RetryBudgetConfig } from "./budget.js";
export type { BackoffConfig } from "./backoff.js";
export type { RetryOptions, HedgeOptions } from "./options.js";

export { callSpanLayer, attemptSpanLayer, tracingEnabled, errorType } from "./tracing.js";

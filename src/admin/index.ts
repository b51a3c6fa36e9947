/** weft/admin — the mesh's admin endpoints (JSON, Prometheus, live events) and its dashboard. Re-exports only. */
export { serveAdmin } from "./server.js";
export type { AdminServer, AdminSource } from "./server.js";
export type { AdminOptions } from "./options.js";
export { ADMIN_DEFAULTS } from "./options.js";
export { renderPrometheus, PROMETHEUS_CONTENT_TYPE } from "./prometheus.js";

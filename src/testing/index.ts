/** weft/testing — the test kit for users' own tests. */
export { fakeClock } from "./fake-clock.js";
export type { FakeClock } from "./fake-clock.js";
export { mockService } from "./mock-service.js";
export type { MockHandler, MockReply } from "./mock-service.js";
export { faultProxy } from "./fault-proxy.js";
export type {
  Fault,
  FaultProxy,
  FaultProxyOptions,
  FaultProxyStats,
  LatencyFault,
  ResetFault,
  BlackholeFault,
  SlowBodyFault,
  RefuseFault,
} from "./fault-proxy.js";

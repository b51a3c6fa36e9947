/** weft/testing — the test kit for users' own tests. */
export { fakeClock } from "./fake-clock.js";
export type { FakeClock } from "./fake-clock.js";
export { mockService } from "./mock-service.js";
export type { MockHandler, MockReply } from "./mock-service.js";

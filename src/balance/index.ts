export { p2cEwma } from "./p2c-ewma.js";
export type { P2cEwmaOptions, P2cEwmaBalancer } from "./p2c-ewma.js";
export { roundRobin } from "./round-robin.js";
export type { Balancer, Picker, PickerContext } from "./picker.js";
export { balanceLayer } from "./layer.js";
export { LoadTracker, DEFAULT_LOAD_OPTIONS } from "./load.js";
export type { LoadOptions } from "./load.js";

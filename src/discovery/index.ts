export { staticDiscovery, validateEndpoint } from "./static.js";

export type { RouteOptionsBase, RouteMatch, RouteBackend, RouteMirror, RouteFault, StringMatch } from "./options.js";

/** Option checking lives in core (every policy folder validates its own options); re-exported for the client. */
export * from "../core/validate.js";

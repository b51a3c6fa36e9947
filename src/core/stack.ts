/**
 * The stack is data: a list of `{ role, layer }` in request order, first = outermost (as Tower's
 * `ServiceBuilder` reads; not the reversed order of Finagle's `StackClient` or undici's
 * `compose`). Users inspect and change it by role (Finagle's Stack, the right way up). A Stack is
 * immutable: every edit returns a new one.
 */
import type { Layer, Middleware, Service } from "./types.js";

export interface StackEntry {
  /** What the layer does: `"deadline"`, `"balance"`, `"attempt"`, … Several entries may share a role (`"use"`). */
  readonly role: string;
  readonly layer: Layer;
}

export class Stack {
  readonly entries: readonly StackEntry[];

  constructor(entries: readonly StackEntry[] = []) {
    this.entries = Object.freeze([...entries]);
  }

  /** The roles in request order. */
  get roles(): string[] {
    return this.entries.map((e) => e.role);
  }

  has(role: string): boolean {
    return this.entries.some((e) => e.role === role);
  }

  /** Adds a layer as the innermost entry (just above the transport). */
  push(entry: StackEntry): Stack {
    return new Stack([...this.entries, entry]);
  }

  /** Inserts before (above, outside) the first entry with `role`. */
  insertBefore(role: string, entry: StackEntry): Stack {
    const at = this.#indexOf(role, "first");
    return new Stack([...this.entries.slice(0, at), entry, ...this.entries.slice(at)]);
  }

  /** Inserts after (below, inside) the last entry with `role`. */
  insertAfter(role: string, entry: StackEntry): Stack {
    const at = this.#indexOf(role, "last") + 1;
    return new Stack([...this.entries.slice(0, at), entry, ...this.entries.slice(at)]);
  }

  /** Replaces every entry with `role` by one `layer` (at the first one's place). */
  replace(role: string, layer: Layer): Stack {
    const at = this.#indexOf(role, "first");
    const kept = this.entries.filter((e, i) => e.role !== role || i === at);
    return new Stack(kept.map((e) => (e.role === role ? { role, layer } : e)));
  }

  /** Removes every entry with `role`. */
  remove(role: string): Stack {
    this.#indexOf(role, "first");
    return new Stack(this.entries.filter((e) => e.role !== role));
  }

  /** Builds the service: each layer wraps the ones after it, the last wraps `terminal`. */
  build(terminal: Service): Service {
    let service = terminal;
    for (let i = this.entries.length - 1; i >= 0; i--) service = (this.entries[i] as StackEntry).layer(service);
    return service;
  }

  #indexOf(role: string, which: "first" | "last"): number {
    const at =
      which === "first"
        ? this.entries.findIndex((e) => e.role === role)
        : this.entries.map((e) => e.role).lastIndexOf(role);
    if (at === -1) throw new Error(`stack has no layer with role "${role}" (roles: ${this.roles.join(", ")})`);
    return at;
  }
}

/** Turns plain `(req, next)` middleware into a layer. */
export function middlewareLayer(middleware: Middleware): Layer {
  return (next) => (req) => middleware(req, next);
}

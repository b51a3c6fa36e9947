import { describe, expect, it } from "vitest";
import { BufferedResponse } from "./response.js";
import { Stack, middlewareLayer } from "./stack.js";
import type { Layer, MeshRequest, Service } from "./types.js";

const trail =
  (name: string, log: string[]): Layer =>
  (next) =>
  async (req) => {
    log.push(`>${name}`);
    const res = await next(req);
    log.push(`<${name}`);
    return res;
  };
const terminal: Service = async () => new BufferedResponse(200, "ok");
const req = {} as MeshRequest;

describe("Stack", () => {
  it("runs layers in request order, first entry outermost", async () => {
    const log: string[] = [];
    const stack = new Stack([
      { role: "a", layer: trail("a", log) },
      { role: "b", layer: trail("b", log) },
    ]);
    await stack.build(terminal)(req);
    expect(log).toEqual([">a", ">b", "<b", "<a"]);
  });

  it("inserts before and after a role, and edits return a new stack", async () => {
    const log: string[] = [];
    const base = new Stack([
      { role: "a", layer: trail("a", log) },
      { role: "c", layer: trail("c", log) },
    ]);
    const edited = base
      .insertAfter("a", { role: "b", layer: trail("b", log) })
      .insertBefore("a", { role: "z", layer: trail("z", log) });
    expect(edited.roles).toEqual(["z", "a", "b", "c"]);
    expect(base.roles).toEqual(["a", "c"]);
    await edited.build(terminal)(req);
    expect(log).toEqual([">z", ">a", ">b", ">c", "<c", "<b", "<a", "<z"]);
  });

  it("replaces and removes every entry of a role", () => {
    const noop: Layer = (next) => next;
    const stack = new Stack([
      { role: "use", layer: noop },
      { role: "x", layer: noop },
      { role: "use", layer: noop },
    ]);
    expect(stack.remove("use").roles).toEqual(["x"]);
    expect(stack.replace("use", noop).roles).toEqual(["use", "x"]);
  });

  it("names the missing role and the roles it has", () => {
    const stack = new Stack([{ role: "a", layer: (n) => n }]);
    expect(() => stack.insertAfter("nope", { role: "b", layer: (n) => n })).toThrow(
      /no layer with role "nope" \(roles: a\)/,
    );
  });

  it("lets a layer call next more than once (a retry) with a derived request", async () => {
    const seen: number[] = [];
    const twice: Layer = (next) => async (r) => {
      await next({ ...r, attempt: 0 });
      return next({ ...r, attempt: 1 });
    };
    const service = new Stack([{ role: "retry", layer: twice }]).build(async (r) => {
      seen.push(r.attempt);
      return new BufferedResponse(200);
    });
    await service({ attempt: 0 } as MeshRequest);
    expect(seen).toEqual([0, 1]);
  });

  it("turns (req, next) middleware into a layer", async () => {
    const service = new Stack([
      { role: "use", layer: middlewareLayer(async (r, next) => next({ ...r, path: `${r.path}?via=mw` })) },
    ]).build(async (r) => new BufferedResponse(200, r.path));
    const res = await service({ path: "/x" } as MeshRequest);
    expect(await res.text()).toBe("/x?via=mw");
  });
});

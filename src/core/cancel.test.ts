import { describe, expect, it } from "vitest";
import { Cancellation, linkSignal } from "./cancel.js";

describe("Cancellation", () => {
  it("calls every listener once with the reason set", () => {
    const c = new Cancellation();
    const seen: unknown[] = [];
    c.addEventListener("abort", () => seen.push(c.reason));
    c.addEventListener("abort", () => seen.push("second"));
    c.abort("why");
    c.abort("again");
    expect(seen).toEqual(["why", "second"]);
    expect(c.aborted).toBe(true);
  });

  it("aborts children with the parent, and a child alone without the parent", () => {
    const parent = new Cancellation();
    const a = parent.child();
    const b = parent.child();
    b.abort("attempt timeout");
    expect(parent.aborted).toBe(false);
    parent.abort("total timeout");
    expect(a.reason).toBe("total timeout");
    expect(b.reason).toBe("attempt timeout");
  });

  it("a released child no longer follows its parent", () => {
    const parent = new Cancellation();
    const child = parent.child();
    child.release();
    parent.abort("late");
    expect(child.aborted).toBe(false);
  });

  it("removes a listener", () => {
    const c = new Cancellation();
    let calls = 0;
    const l = () => calls++;
    c.addEventListener("abort", l);
    c.removeEventListener("abort", l);
    c.abort(1);
    expect(calls).toBe(0);
  });

  it("follows a caller's AbortSignal until unlinked", () => {
    const controller = new AbortController();
    const c = new Cancellation();
    const unlink = linkSignal(controller.signal, c);
    controller.abort(new Error("caller"));
    expect((c.reason as Error).message).toBe("caller");
    unlink();

    const other = new AbortController();
    const d = new Cancellation();
    linkSignal(other.signal, d)();
    other.abort();
    expect(d.aborted).toBe(false);
  });
});

/** For option-validation tests: the option an `InvalidOptionsError` names. */
import { expect } from "vitest";
import { InvalidOptionsError } from "../../src/core/errors.js";

/** Runs `f`, expects it to throw `InvalidOptionsError`, and returns the option it names. */
export function invalidOption(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return (error as InvalidOptionsError).option;
  }
  throw new Error("did not throw");
}

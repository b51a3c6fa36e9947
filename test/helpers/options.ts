/** For option-validation tests: the `InvalidOptionsError` a construction throws. */
import { expect } from "vitest";
import { InvalidOptionsError } from "../../src/core/errors.js";

/** Runs `f`, expects it to throw `InvalidOptionsError`, and returns that error. */
export function invalidOptionsError(f: () => unknown): InvalidOptionsError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error("did not throw");
}

/** Runs `f`, expects it to throw `InvalidOptionsError`, and returns the option it names. */
export function invalidOption(f: () => unknown): string {
  return invalidOptionsError(f).option;
}

/** "option: message" of the `InvalidOptionsError` `f` throws. */
export function invalidOptionText(f: () => unknown): string {
  const error = invalidOptionsError(f);
  return `${error.option}: ${error.message}`;
}

/**
 * Option checking. Every message names the option, the value given and what is allowed; an
 * unknown key fails too (with the nearest known name), because a typo in a resilience option
 * silently turns the policy off.
 */
import { InvalidOptionsError } from "./errors.js";

export function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export function fail(option: string, value: unknown, allowed: string): never {
  throw new InvalidOptionsError(option, `invalid option ${option}: got ${describe(value)}; expected ${allowed}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Fails on keys outside `allowed`; `later` names keys reserved for policies not in this version. */
export function checkKeys(
  object: Record<string, unknown>,
  allowed: readonly string[],
  prefix: string,
  later: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(object)) {
    if (allowed.includes(key) || object[key] === undefined) continue;
    const name = prefix === "" ? key : `${prefix}.${key}`;
    if (key in later)
      throw new InvalidOptionsError(name, `option ${name} is not available in this version of weft (${later[key]})`);
    const near = nearest(key, allowed);
    throw new InvalidOptionsError(
      name,
      `unknown option ${name}${near === undefined ? "" : ` (did you mean ${prefix === "" ? near : `${prefix}.${near}`}?)`}; allowed: ${allowed.join(", ")}`,
    );
  }
}

/** A duration in ms: a positive finite number, or `false` (off) when `allowFalse`. */
export function checkMs(option: string, value: unknown, allowFalse: boolean): number | false | undefined {
  if (value === undefined) return undefined;
  if (value === false && allowFalse) return false;
  if (typeof value === "number" && value > 0 && Number.isFinite(value)) return value;
  return fail(option, value, `a positive number of milliseconds${allowFalse ? " or false (off)" : ""}`);
}

/** An integer ≥ `min` (a safe integer), or `fallback` when absent. */
export function checkInteger(option: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= min) return value;
  return fail(
    option,
    value,
    min === 0 ? "a non-negative integer" : min === 1 ? "a positive integer" : `an integer of at least ${min}`,
  );
}

/** A finite number accepted by `ok`, or `fallback` when absent. */
export function checkNumber(
  option: string,
  value: unknown,
  fallback: number,
  ok: (n: number) => boolean,
  allowed: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isFinite(value) && ok(value)) return value;
  return fail(option, value, allowed);
}

function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

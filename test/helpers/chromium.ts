/**
 * Real headless Chromium for end-to-end tests, driven by playwright-core (which downloads no
 * browser): Debian's `chromium` package, launched with the flags measured to work here
 * (../shared/FACTS.md) — without the background-networking ones Chromium keeps trying to reach
 * the outside and fails.
 *
 * Missing browser: in CI (`CI` set) the test fails with the install command; locally it is
 * skipped, and `CHROMIUM_SKIP_NOTE` says why.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { chromium, type Browser } from "playwright-core";

const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const INSTALL = "apt-get install -y chromium";

/** The browser binary: `$CHROMIUM_PATH`, else `chromium` (or `chromium-browser`) on PATH — `which chromium`. */
const chromiumPath: string | undefined = findChromium();

/** True in CI: a missing browser is a failure there, not a skip. */
const inCI = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";

/** For `describe.skipIf(skipChromium)`: skip only when the browser is missing and this is not CI. */
export const skipChromium: boolean = chromiumPath === undefined && !inCI;

const CHROMIUM_SKIP_NOTE = `chromium not found on PATH: skipping the browser tests (install it with \`${INSTALL}\`; in CI they fail instead)`;

if (skipChromium) console.warn(CHROMIUM_SKIP_NOTE);

/** Launches headless Chromium; throws (with the install command) when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (chromiumPath === undefined)
    throw new Error(`chromium not found on PATH (CI=${process.env.CI ?? ""}): install it with \`${INSTALL}\``);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: [...CHROMIUM_ARGS], timeout: 20_000 });
}

function findChromium(): string | undefined {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit !== undefined && explicit !== "") return isExecutable(explicit) ? explicit : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    for (const name of ["chromium", "chromium-browser"]) {
      const candidate = join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The little of the DOM that page functions in tests use. The project compiles without the DOM
 * library (it is a Node library), so a function sent to the page starts with
 * `const { document } = globalThis as unknown as BrowserGlobals;` and stays typed.
 */
export interface BrowserGlobals {
  readonly document: BrowserDocument;
  getComputedStyle(element: BrowserElement): { readonly backgroundColor: string };
  readonly __pwned?: unknown;
}

export interface BrowserDocument {
  readonly body: BrowserElement;
  querySelector(selector: string): BrowserElement | null;
  querySelectorAll(selector: string): ArrayLike<BrowserElement> & Iterable<BrowserElement>;
}

export interface BrowserElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): BrowserElement | null;
  querySelectorAll(selector: string): ArrayLike<BrowserElement> & Iterable<BrowserElement>;
}

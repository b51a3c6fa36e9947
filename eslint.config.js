// ESLint (flat config) with type information, over src/, test/, bench/, examples/ and the config
// files. `npm run lint`; CI runs it (.ci/run). Three parts: the type-checked rule set (trimmed,
// each rule turned off says why), the import walls of the design, and the injected clock.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

// ---------------------------------------------------------------------------------------------
// Import walls. Each folder of src/ lists the other folders of src/ it may import from (relative
// imports that leave the folder, `../<folder>/…`; src/ is one level deep). Anything else — another
// folder, a folder added later, the root index — is an error. This is the rule the code keeps
// today, not an aspiration: a change that needs a new edge changes this table, in review.
// Tests (`*.test.ts`) are exempt: they compose whatever they exercise (fake clock, mock service,
// static discovery, a whole client).

/** The policy folders: each decides one thing about a call, on top of core, knowing no other. */
const POLICIES = ["balance", "health", "retry", "limit", "discovery", "route"];

/** @type {Record<string, { may: string[]; why: string }>} */
const WALLS = {
  core: { may: [], why: "src/core is the kernel: it imports only its own files (./)" },
  ...Object.fromEntries(
    POLICIES.map((p) => [
      p,
      {
        may: ["core"],
        why: `src/${p} is a policy folder: policies import ../core/ only, never each other or a transport`,
      },
    ]),
  ),
  // Discovery reads etcd through the shared client and list + watch loop (../etcd/), as config does.
  discovery: {
    may: ["core", "etcd"],
    why: "src/discovery is a policy folder: it imports ../core/ and ../etcd/ (the shared etcd client) only, never another policy or a transport",
  },
  // What discovery, dynamic config and a CLI share to talk to etcd: a client and its list + watch loop.
  etcd: { may: ["core"], why: "src/etcd (the etcd client and its list + watch loop) imports ../core/ only" },
  // Dynamic-config sources: files (core's watched file) and etcd; the client validates the documents.
  config: {
    may: ["core", "etcd"],
    why: "src/config (config sources: file, etcd, the document parser) imports ../core/ and ../etcd/ only",
  },
  transport: {
    may: ["core", "security"],
    why: "src/transport knows no policy: it imports ../core/ and ../security/ only",
  },
  security: { may: ["core"], why: "src/security (TLS material, SPIFFE) imports ../core/ only" },
  telemetry: { may: ["core"], why: "src/telemetry observes through core's types and events: it imports ../core/ only" },
  // The inbound side: core (clock, context, errors, snapshots), TLS material, its telemetry.
  server: {
    may: ["core", "security", "telemetry"],
    why: "weft/server imports ../core/, ../security/ and ../telemetry/ only (no policy, transport or client internals)",
  },
  // The test kit builds on core's contracts (Clock, Transport, BufferedResponse) and nothing else.
  testing: { may: ["core"], why: "weft/testing imports ../core/ only (no policy, transport or client internals)" },
  // The admin endpoints read the mesh through the public surface only.
  admin: { may: ["index.js"], why: "weft/admin uses the public surface only: import from ../index.js" },
  // The client is the composition root of the outbound side: it wires every policy, the
  // transports and telemetry. It does not reach into the inbound side, the admin or the test kit.
  client: {
    may: ["core", ...POLICIES, "transport", "telemetry", "security", "config", "etcd"],
    why: "src/client composes the outbound side; it imports no server, admin or testing code",
  },
  // gRPC (`grpcClient`) is a composition root on top of the client: a weft client whose transport
  // is grpc-js, with the status mapping, the call objects and the method config around it.
  grpc: {
    may: ["core", "client"],
    why: "src/grpc (grpcClient) imports ../core/ and ../client/ (its public pieces) only",
  },
  // The `weft config` CLI is a composition root like the client: it reads and writes etcd, parses
  // documents as config sources do and checks them by the client's own rules.
  cli: {
    may: ["core", "etcd", "config", "client"],
    why: "src/cli (the weft config CLI) imports ../core/, ../etcd/, ../config/ and ../client/ only",
  },
};

/** Not the clock: no runtime code outside src/core/clock.ts talks to the real time (see below). */
const TIMERS_MODULES = {
  regex: "^(?:node:)?timers(?:/promises)?$",
  message: "Real timers: use the injected Clock (clock.setTimer) — see src/core/clock.ts.",
};
const OTEL = {
  regex: "^@opentelemetry/",
  message: "Only src/telemetry/ imports @opentelemetry/*: import what you need from ../telemetry/.",
};
const GRPC = {
  regex: "^@grpc/",
  message: "Only src/grpc/ imports @grpc/* (an optional peer dependency, loaded by src/grpc/load.ts).",
};
const OPOSSUM_ADAPTER = "src/health/opossum-adapter.ts";
const OPOSSUM = {
  regex: "^opossum$",
  message: `Only ${OPOSSUM_ADAPTER} imports opossum (its test pins what weft relies on): use its BreakerWindow.`,
};
const SELF = {
  regex: "^weft(?:/|$)",
  message: "Library code imports its own files by relative path, not the package name (that would skip the walls).",
};

/** `no-restricted-imports` for one folder (flat config replaces the rule per block, so one block carries all). */
function walls(folder, { files = [`src/${folder}/**/*.ts`], ignores = [], opossum = false } = {}) {
  const { may, why } = WALLS[folder];
  const allowed = may.map((m) => (m.endsWith(".js") ? `${m.replace(".", "\\.")}$` : `${m}/`));
  const leaving = allowed.length === 0 ? "^\\.\\./" : `^\\.\\./(?!(?:${allowed.join("|")}))`;
  const patterns = [{ regex: leaving, message: `${why}. (Import walls: eslint.config.js)` }, TIMERS_MODULES, SELF];
  if (folder !== "telemetry") patterns.push(OTEL);
  if (folder !== "grpc") patterns.push(GRPC);
  if (!opossum) patterns.push(OPOSSUM);
  return {
    files,
    ignores: ["src/**/*.test.ts", ...ignores],
    rules: { "no-restricted-imports": ["error", { patterns }] },
  };
}

// ---------------------------------------------------------------------------------------------
// Time and randomness are injected (src/core/clock.ts: Clock, Random; weft/testing: fakeClock).
// Library code reads them from its context, never from the globals, so tests drive time.
const CLOCK = "Use the injected clock (clock.now() / clock.wallNow() / clock.setTimer()) — see src/core/clock.ts.";
const RANDOM = "Use the injected Random (context.random) — see src/core/clock.ts.";
const clockRules = {
  "no-restricted-properties": [
    "error",
    { object: "Date", property: "now", message: CLOCK },
    { object: "performance", property: "now", message: CLOCK },
    { object: "process", property: "hrtime", message: CLOCK },
    { object: "Math", property: "random", message: RANDOM },
    { object: "globalThis", property: "setTimeout", message: CLOCK },
    { object: "globalThis", property: "setInterval", message: CLOCK },
  ],
  "no-restricted-globals": ["error", { name: "setTimeout", message: CLOCK }, { name: "setInterval", message: CLOCK }],
  "no-restricted-syntax": [
    "error",
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: CLOCK },
  ],
};

export default defineConfig(
  globalIgnores(["dist/", "coverage/", "artifacts/", "etc/", ".scratch/", ".bench-tmp/", "node_modules/"]),

  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // Added to the recommended set.
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      // In the recommended set; spelled out because the design depends on them. checksVoidReturn
      // stays on (strict): an async function where a void callback is expected is an error.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // `_`-prefixed names are deliberate (a parameter an interface requires, a rest sibling).
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
          ignoreRestSiblings: true,
        },
      ],
      // Rejections pass on what they were given: an AbortSignal's `reason`, a caught `unknown`.
      // Literals (`reject("x")`) are still errors.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // A `let` read by a closure written above its one assignment cannot be a `const`.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],

      // Turned off:
      // - require-await: an `async` method without `await` is how this code meets an interface
      //   that returns a Promise (close(), stop(), text()) and turns a synchronous throw into a
      //   rejection; the promise bugs are no-floating-promises' and no-misused-promises' job.
      "@typescript-eslint/require-await": "off",
      // - unbound-method: the interfaces here declare function-valued members in method syntax
      //   (Clock's `now()`, contexts' `onStateChange()`) and the code passes them around as the
      //   closures they are; every destructuring would be flagged. Classes that depend on `this`
      //   are called as methods.
      "@typescript-eslint/unbound-method": "off",
      // - no-redundant-type-constituents: `Promise<unknown> | unknown` is written on purpose in
      //   public types to say "may return a promise"; the rule's other finds are rare here.
      "@typescript-eslint/no-redundant-type-constituents": "off",
    },
  },

  // The import walls and the clock rules, for library code.
  Object.keys(WALLS).map((folder) => walls(folder, folder === "health" ? { ignores: [OPOSSUM_ADAPTER] } : {})),
  walls("health", { files: [OPOSSUM_ADAPTER], opossum: true }),
  {
    files: ["src/index.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [TIMERS_MODULES, SELF, OTEL, GRPC, OPOSSUM] }] },
  },
  { files: ["src/**/*.ts"], ignores: ["src/**/*.test.ts"], rules: clockRules },
  {
    // Real time by design, so off for the whole file:
    // - src/core/clock.ts: the system clock and random themselves.
    // - src/testing/fault-proxy.ts, fault-pipe.ts: the fault proxy delays real bytes on real
    //   sockets (its header says why it takes no Clock); `random` is injectable, Math.random the default.
    // Single real-time lines elsewhere carry an eslint-disable comment with their reason.
    files: ["src/core/clock.ts", "src/testing/fault-proxy.ts", "src/testing/fault-pipe.ts"],
    rules: { "no-restricted-properties": "off", "no-restricted-globals": "off", "no-restricted-syntax": "off" },
  },

  {
    // Tests: vitest's asymmetric matchers (`expect.any()`, `expect.stringMatching()`) are typed
    // `any`, and tests read JSON bodies as `any` on purpose to assert their fields one by one;
    // no-unsafe-argument / -call / -return still apply.
    files: ["**/*.test.ts", "**/*.test-d.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off", "@typescript-eslint/no-unsafe-member-access": "off" },
  },
  {
    // Type tests: a `@ts-expect-error` line is a call that must not type-check, so its type is unresolved.
    files: ["**/*.test-d.ts"],
    rules: { "@typescript-eslint/no-unsafe-call": "off" },
  },

  // Plain JavaScript (this file): no type information.
  { files: ["**/*.js"], extends: [tseslint.configs.disableTypeChecked] },
);

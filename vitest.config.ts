import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string): string => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^weft\/testing$/, replacement: src("testing/index.ts") },
      { find: /^weft\/admin$/, replacement: src("admin/index.ts") },
      { find: /^weft\/server$/, replacement: src("server/index.ts") },
      { find: /^weft\/grpc$/, replacement: src("grpc/index.ts") },
      { find: /^weft$/, replacement: src("index.ts") },
    ],
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Type tests (test/types/*.test-d.ts: expectTypeOf, @ts-expect-error) run with the others:
    // vitest hands them to tsc (test/types/tsconfig.json); nothing in them executes.
    typecheck: {
      enabled: true,
      include: ["test/types/**/*.test-d.ts"],
      tsconfig: "./test/types/tsconfig.json",
    },
  },
});

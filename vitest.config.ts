import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start their own local cloud; two cores, so run files one or two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    // Generous: integration tests run the whole system on a 2-core machine that may be shared.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});

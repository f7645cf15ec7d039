import { defineConfig } from "vitest/config"

/**
 * The reliability suite (`npm run test:reliability`; `RELIABILITY_QUICK=1` for CI's short form).
 * Its files start real processes and drive real load, so they run one at a time in one fork:
 * the load each check applies stays predictable and the figures it prints stay comparable.
 */
export default defineConfig({
  test: {
    include: ["test/reliability/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
    poolOptions: { forks: { singleFork: true } },
    sequence: { concurrent: false },
    reporters: ["default"]
  }
})

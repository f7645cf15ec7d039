import { defineConfig } from "vitest/config"

/**
 * The tests Stryker runs against each mutant of the money-and-limits core (`stryker.config.mjs`):
 * the unit tests of those modules plus the PostgreSQL-backed property test of the budget
 * arithmetic. The limiter's virtual-time tests (ratelimit.test.ts) are left out: the StartLog
 * property tests kill what they kill in a fraction of the time. No HTTP servers, no reliability runs.
 */
export default defineConfig({
  test: {
    include: [
      "test/unit/llm/ErrorClassifier*.test.ts",
      "test/unit/llm/SlidingWindow.test.ts",
      "test/unit/llm/RetryPolicy.test.ts",
      "test/unit/llm/Cost.test.ts",
      "test/unit/llm/PriceTable*.test.ts",
      "test/unit/llm/LlmClient.test.ts",
      "test/unit/domain/*.test.ts",
      "test/unit/usage/*.test.ts",
      "test/unit/budget/*.test.ts",
      "test/integration/budget/BudgetArithmetic.test.ts",
      // Kills the mutant that drops the alert budgets from `status`.
      "test/integration/budget/BudgetGuard.test.ts"
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})

import { defineConfig } from "vitest/config"

/**
 * The tests Stryker runs against each mutant of the money-and-limits core (`stryker.config.mjs`):
 * the unit tests of those modules plus the few PostgreSQL-backed tests that exercise the budget
 * arithmetic. Nothing slow (no HTTP servers, no reliability runs), so a full pass stays in minutes.
 */
export default defineConfig({
  test: {
    include: [
      "test/unit/llm/ErrorClassifier*.test.ts",
      "test/unit/llm/SlidingWindow.test.ts",
      "test/unit/llm/RetryPolicy.test.ts",
      "test/unit/llm/Cost.test.ts",
      "test/unit/llm/LlmClient.test.ts",
      "test/unit/llm/ratelimit.test.ts",
      "test/unit/domain/*.test.ts",
      "test/unit/usage/*.test.ts",
      "test/unit/budget/*.test.ts",
      "test/integration/budget/BudgetArithmetic.test.ts",
      "test/integration/budget/BudgetGuard.test.ts",
      "test/integration/budget/CostMonitor.test.ts"
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})

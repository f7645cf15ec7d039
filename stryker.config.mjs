// @ts-check
/**
 * Mutation testing of the money-and-limits core: `npm run test:mutation` (see test/MUTATION.md).
 * @type {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export default {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  mutate: [
    "src/llm/ErrorClassifier.ts",
    "src/llm/RetryPolicy.ts",
    "src/llm/SlidingWindow.ts",
    "src/domain/Money.ts",
    "src/llm/PriceTable.ts",
    "src/usage/LedgerRow.ts",
    "src/domain/Period.ts",
    // Only the arithmetic: which limits apply, committed = spent + reserved, and the breach rule.
    "src/budget/BudgetGuard.ts:45-82",
    // Only the level logic: the configured budgets, the sorted levels and which of them are crossed
    // (not lines 96-97, Effect.forEach's `discard` options: the results are unused either way).
    "src/budget/CostMonitor.ts:32-37",
    "src/budget/CostMonitor.ts:91-95"
  ],
  // TypeScript 7 has no JavaScript API: no type checker, and a tsconfig that does not exist so
  // Stryker does not try to rewrite ours in the sandbox.
  checkers: [],
  tsconfigFile: "tsconfig.stryker-none.json",
  // Messages are not logic: only operators, conditions, arithmetic and code removal are counted.
  mutator: { excludedMutations: ["StringLiteral"] },
  ignoreStatic: true,
  coverageAnalysis: "perTest",
  // The machine is shared; raise with STRYKER_CONCURRENCY on a free one.
  concurrency: Number(process.env["STRYKER_CONCURRENCY"] ?? 1),
  timeoutMS: 20_000,
  // The first run collects per-test coverage of every test, PostgreSQL ones included: slow on a busy machine.
  dryRunTimeoutMinutes: 30,
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true
}

import { Layer } from "effect"
import { BudgetGuard } from "./budget/BudgetGuard.js"
import { CostMonitor } from "./budget/CostMonitor.js"
import * as Database from "./db/Database.js"
import { CircuitBreaker } from "./llm/CircuitBreaker.js"
import { LlmClient } from "./llm/LlmClient.js"
import { OpenRouter } from "./llm/OpenRouter.js"
import { RateLimiter } from "./llm/RateLimiter.js"
import { ChangeProcessor } from "./summarize/ChangeProcessor.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { SummaryCache } from "./summarize/SummaryCache.js"
import { Pricing } from "./usage/Pricing.js"
import { UsageRepo } from "./usage/UsageRepo.js"

/** Everything a summary needs, from the database up; the CLI runs on this. */
export const SummaryServices = Layer.mergeAll(Summarizer.layer).pipe(
  Layer.provideMerge(Layer.mergeAll(SummaryCache.layer, ChangeProcessor.layer)),
  Layer.provideMerge(LlmClient.layer),
  Layer.provideMerge(Layer.mergeAll(OpenRouter, RateLimiter.layer, CircuitBreaker.layer, Pricing.layer, BudgetGuard.layer)),
  Layer.provideMerge(UsageRepo.layer),
  Layer.provideMerge(Database.layer)
)

/** The server's services: the above plus the cost monitor's scheduled fiber. */
export const AppServices = CostMonitor.live.pipe(Layer.provideMerge(SummaryServices))

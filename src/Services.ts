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

const summaryServices = <E, R>(changes: Layer.Layer<ChangeProcessor, E, R>) => Layer.mergeAll(Summarizer.layer).pipe(
  Layer.provideMerge(Layer.mergeAll(SummaryCache.layer, changes)),
  Layer.provideMerge(LlmClient.layer),
  Layer.provideMerge(Layer.mergeAll(OpenRouter, RateLimiter.layer, CircuitBreaker.layer, Pricing.layer, BudgetGuard.layer)),
  Layer.provideMerge(UsageRepo.layer),
  Layer.provideMerge(Database.layer)
)

/** Everything a summary needs, from the database up; the CLI runs on this, its one change on its own thread. */
export const SummaryServices = summaryServices(ChangeProcessor.inProcess)

/** The server's services: the above with changes processed in worker threads, plus the cost monitor's scheduled fiber. */
export const AppServices = CostMonitor.live.pipe(Layer.provideMerge(summaryServices(ChangeProcessor.layer)))

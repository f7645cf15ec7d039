import { Layer } from "effect"
import { BudgetGuard } from "./budget/BudgetGuard.js"
import { CostMonitor } from "./budget/CostMonitor.js"
import * as Database from "./db/Database.js"
import { ChatGateway } from "./gateway/ChatGateway.js"
import { CircuitBreaker } from "./llm/CircuitBreaker.js"
import { LlmClient } from "./llm/LlmClient.js"
import { OpenRouter } from "./llm/OpenRouter.js"
import { RateLimiter } from "./llm/RateLimiter.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { SummaryCache } from "./summarize/SummaryCache.js"
import { Pricing } from "./usage/Pricing.js"
import { UsageRepo } from "./usage/UsageRepo.js"

const summaryServicesOn = <E, R>(database: Layer.Layer<Layer.Layer.Success<typeof Database.layer>, E, R>) =>
  Layer.mergeAll(Summarizer.layer).pipe(
    Layer.provideMerge(SummaryCache.layer),
    Layer.provideMerge(LlmClient.layer),
    Layer.provideMerge(Layer.mergeAll(OpenRouter, RateLimiter.layer, CircuitBreaker.layer, Pricing.layer, BudgetGuard.layer)),
    Layer.provideMerge(UsageRepo.layer),
    Layer.provideMerge(database)
  )

/** Everything a summary needs, from the database up, owning an embedded database. */
export const SummaryServices = summaryServicesOn(Database.layer)

/** The same for the CLI, which uses a running server's embedded database rather than opening it twice. */
export const CliServices = summaryServicesOn(Database.cliLayer)

/** The server's services: the above plus the cost monitor's scheduled fiber. */
export const AppServices = Layer.mergeAll(CostMonitor.live, ChatGateway.layer).pipe(Layer.provideMerge(SummaryServices))

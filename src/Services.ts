import { Layer } from "effect"
import { BudgetGuard } from "./budget/BudgetGuard.js"
import { CostMonitor } from "./budget/CostMonitor.js"
import * as Database from "./db/Database.js"
import { ChatGateway } from "./gateway/ChatGateway.js"
import { JobQueue } from "./jobs/JobQueue.js"
import { JobRetention } from "./jobs/JobRetention.js"
import { JobStore } from "./jobs/JobStore.js"
import { JobWorkers } from "./jobs/JobWorker.js"
import { CircuitBreaker } from "./llm/CircuitBreaker.js"
import { LlmClient } from "./llm/LlmClient.js"
import { OpenRouter } from "./llm/OpenRouter.js"
import { RateLimiter } from "./llm/RateLimiter.js"
import { ChangeProcessor } from "./summarize/ChangeProcessor.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { SummaryCache } from "./summarize/SummaryCache.js"
import { Pricing } from "./usage/Pricing.js"
import { UsageRepo } from "./usage/UsageRepo.js"

const summaryServicesOn = <E, R, E2, R2>(
  database: Layer.Layer<Layer.Layer.Success<typeof Database.layer>, E, R>,
  changes: Layer.Layer<ChangeProcessor, E2, R2>
) =>
  Layer.mergeAll(Summarizer.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(SummaryCache.layer, changes)),
    Layer.provideMerge(LlmClient.layer),
    Layer.provideMerge(Layer.mergeAll(OpenRouter, RateLimiter.layer, CircuitBreaker.layer, Pricing.layer, BudgetGuard.layer)),
    Layer.provideMerge(UsageRepo.layer),
    Layer.provideMerge(database)
  )

/** Everything a summary needs, from the database up, owning an embedded database; one change at a time on its own thread. */
export const SummaryServices = summaryServicesOn(Database.layer, ChangeProcessor.inProcess)

/** The same for the CLI, which uses a running server's embedded database rather than opening it twice. */
export const CliServices = summaryServicesOn(Database.cliLayer, ChangeProcessor.inProcess)

/** Summary jobs: the queue on the service's database, every replica's workers and the retention sweep. */
const JobServices = Layer.mergeAll(JobWorkers, JobRetention).pipe(
  Layer.provideMerge(Layer.mergeAll(JobStore.layer, JobQueue.layer))
)

/** The server's services: changes processed in worker threads, plus the cost monitor's scheduled fiber, the gateway and summary jobs. */
export const AppServices = Layer.mergeAll(CostMonitor.live, ChatGateway.layer, JobServices).pipe(
  Layer.provideMerge(summaryServicesOn(Database.layer, ChangeProcessor.layer))
)

import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer } from "effect"
import { AlertLedger } from "./budget/AlertLedger.js"
import { AlertSender } from "./budget/AlertSender.js"
import { BudgetGuard } from "./budget/BudgetGuard.js"
import { CostMonitor } from "./budget/CostMonitor.js"
import * as Database from "./db/Database.js"
import { ChatGateway } from "./gateway/ChatGateway.js"
import { GatewayUpstream } from "./gateway/Upstream.js"
import { HttpLive } from "./http/Server.js"
import { JobQueue } from "./jobs/JobQueue.js"
import { JobRetention } from "./jobs/JobRetention.js"
import { JobStore } from "./jobs/JobStore.js"
import { JobWorkers } from "./jobs/JobWorker.js"
import { CircuitBreaker } from "./llm/CircuitBreaker.js"
import { LlmClient } from "./llm/LlmClient.js"
import { OpenRouter } from "./llm/OpenRouter.js"
import { Pricing } from "./llm/Pricing.js"
import { RateLimiter } from "./llm/RateLimiter.js"
import { Scrubber } from "./llm/Scrubber.js"
import { UpstreamPool } from "./llm/UpstreamPool.js"
import { ChangeProcessor } from "./summarize/ChangeProcessor.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { SummaryCache } from "./summarize/SummaryCache.js"
import { UsageRepo } from "./usage/UsageRepo.js"

/*
 * The composition root: every service layer of the process is put together here and nowhere
 * else. Each layer below needs only what the layers under it give (and `Config`, provided by
 * `main.ts` / `cli.ts`), read from the bottom up:
 *
 *   database (client + migrations)        Database.layer | Database.cliLayer
 *   ledger, alert claims, HTTP clients    UsageRepo, AlertLedger, undici (price table), UpstreamPool (calls), Scrubber
 *   upstream and its guards               OpenRouter, RateLimiter, CircuitBreaker, Pricing, BudgetGuard
 *   the call                              LlmClient
 *   cache and change processing           SummaryCache, ChangeProcessor (threads or in process)
 *   the summary                           Summarizer
 *   server only                           CostMonitor (+ AlertSender), ChatGateway (+ GatewayUpstream), summary jobs
 *                                         (JobStore, JobQueue on pg-boss, JobWorkers, JobRetention)
 *
 * The server (`ServerLive`) is the HTTP routes and listener of `http/Server.ts` on `AppServices`;
 * the CLI uses `CliServices`, the evaluation `SummaryServices`.
 */
const summaryServicesOn = <E, R, E2, R2>(
  database: Layer.Layer<Layer.Layer.Success<typeof Database.layer>, E, R>,
  changes: Layer.Layer<ChangeProcessor, E2, R2>
) =>
  Summarizer.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(SummaryCache.layer, changes)),
    Layer.provideMerge(LlmClient.layer),
    Layer.provideMerge(Layer.mergeAll(OpenRouter, RateLimiter.layer, CircuitBreaker.layer, Pricing.layer, BudgetGuard.layer)),
    Layer.provideMerge(Layer.mergeAll(UsageRepo.layer, AlertLedger.layer, NodeHttpClient.layerUndici, UpstreamPool.layer, Scrubber.layer)),
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
export const AppServices = Layer.mergeAll(CostMonitor.layer.pipe(Layer.provide(AlertSender.layer)), ChatGateway.layer.pipe(Layer.provide(GatewayUpstream.layer)), JobServices).pipe(
  Layer.provideMerge(summaryServicesOn(Database.layer, ChangeProcessor.layer))
)

/** The whole server: its routes and listener on the app's services; needs only `Config`. */
export const ServerLive = HttpLive.pipe(Layer.provide(AppServices))

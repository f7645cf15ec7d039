import { HttpApi, OpenApi } from "@effect/platform"
import { ChatApi } from "../gateway/ChatApi.js"
import { SummariesApi } from "../summarize/SummariesApi.js"
import { UsageApi } from "../usage/UsageApi.js"
import { HealthApi } from "./HealthApi.js"

export class Api extends HttpApi.make("policy-summarizer")
  .add(SummariesApi)
  .add(UsageApi)
  .add(HealthApi)
  .add(ChatApi)
  .annotate(OpenApi.Title, "policy-summarizer")
  .annotate(OpenApi.Description, "Plain-language summaries of policy changes, with an exact cost ledger.")
{}

import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { ChatApi } from "../gateway/ChatApi.js"
import { JobsApi } from "../jobs/JobsApi.js"
import pkg from "../../package.json" with { type: "json" }
import { SummariesApi } from "../summarize/SummariesApi.js"
import { UsageApi } from "../usage/UsageApi.js"
import { withExamples } from "./ApiExamples.js"
import { HealthApi } from "./HealthApi.js"
import { IndexApi } from "./IndexApi.js"

/** The service's version, as package.json says. */
export const version: string = pkg.version

export class Api extends HttpApi.make("policy-summarizer")
  .add(SummariesApi)
  .add(UsageApi)
  .add(HealthApi)
  .add(ChatApi)
  .add(IndexApi)
  .add(JobsApi)
  .annotate(OpenApi.Title, "policy-summarizer")
  .annotate(OpenApi.Version, version)
  .annotate(
    OpenApi.Description,
    "Plain-language summaries of policy changes, with an exact cost ledger. Every answer carries `x-request-id` " +
      "(the caller's when well-formed, else a fresh one), the id on the service's log lines for that request. " +
      "A known path called with a method it does not take gets 405 with `Allow`."
  )
  .annotate(OpenApi.Transform, withExamples)
{}

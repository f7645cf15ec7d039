import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { BadRequest, TooManyRequests } from "../domain/ApiErrors.js"
import { Authorization } from "../http/Authorization.js"
import { Summary } from "./Summary.js"

export const SummaryRequest = Schema.Struct({
  diff: Schema.optional(Schema.String),
  before: Schema.optional(Schema.String),
  after: Schema.optional(Schema.String),
  document: Schema.optional(Schema.Struct({
    title: Schema.optional(Schema.String),
    url: Schema.optional(Schema.String),
    service: Schema.optional(Schema.String)
  })),
  model: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Number),
  maxTokens: Schema.optional(Schema.Int)
})
export type SummaryRequest = typeof SummaryRequest.Type

export class SummariesApi extends HttpApiGroup.make("summaries")
  .add(
    HttpApiEndpoint.post("summarize", "/v1/summaries")
      .setPayload(SummaryRequest)
      .addSuccess(Summary)
      .addError(BadRequest)
      .addError(TooManyRequests)
      .annotate(OpenApi.Summary, "Summarize a policy change")
      .annotate(
        OpenApi.Description,
        "Exactly one of `diff` (a unified diff) or the pair `before`/`after`. Upstream failures are never errors here: the answer is a `fallback` with the raw diff and the reason."
      )
  )
  .middleware(Authorization)
{}

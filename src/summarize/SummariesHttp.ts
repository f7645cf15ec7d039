import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { Config } from "../Config.js"
import type { AppConfig } from "../Config.js"
import { BadRequest, TooManyRequests } from "../domain/ApiErrors.js"
import { Api } from "../http/Api.js"
import type { SummaryRequest } from "./SummariesApi.js"
import type { SummaryInput } from "./Summarizer.js"
import { Summarizer } from "./Summarizer.js"

const definedOnly = <A extends object>(a: A) =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as { [K in keyof A]: Exclude<A[K], undefined> }

const bad = (field: string, message: string) => Effect.fail(new BadRequest({ field, message }))

/** What the schema cannot say: which input form, and the operator's limits on model and spend. */
export const validate = (body: SummaryRequest, config: AppConfig): Effect.Effect<SummaryInput, BadRequest> => {
  const { openrouter } = config
  const hasPair = body.before !== undefined || body.after !== undefined
  if (body.diff !== undefined && hasPair) return bad("diff", "Give either `diff` or `before` and `after`, not both")
  if (body.diff === undefined && !hasPair) return bad("diff", "Give either `diff` (a unified diff) or `before` and `after`")
  if (body.diff !== undefined && body.diff.trim() === "") return bad("diff", "`diff` is empty")
  if (hasPair && body.before === undefined) return bad("before", "`before` is required with `after`")
  if (hasPair && body.after === undefined) return bad("after", "`after` is required with `before`")
  if (hasPair && body.before === "" && body.after === "") return bad("before", "`before` and `after` are both empty")
  if (body.temperature !== undefined && !(body.temperature >= 0 && body.temperature <= 2)) {
    return bad("temperature", "`temperature` must be between 0 and 2")
  }
  if (body.model !== undefined && !openrouter.allowedModels.includes(body.model)) {
    return bad("model", `\`model\` must be one of: ${openrouter.allowedModels.join(", ")} (OPENROUTER_ALLOWED_MODELS)`)
  }
  if (body.maxTokens !== undefined && (body.maxTokens < 1 || body.maxTokens > openrouter.maxTokens)) {
    return bad("maxTokens", `\`maxTokens\` must be between 1 and ${openrouter.maxTokens} (OPENROUTER_MAX_TOKENS)`)
  }
  return Effect.succeed({
    change: body.diff !== undefined ? { diff: body.diff } : { before: body.before!, after: body.after! },
    ...(body.document !== undefined ? { document: definedOnly(body.document) } : {}),
    ...(body.model !== undefined ? { model: body.model } : {}),
    ...(body.temperature !== undefined ? { temperature: body.temperature } : {}),
    ...(body.maxTokens !== undefined ? { maxTokens: body.maxTokens } : {})
  })
}

export const SummariesHttp = HttpApiBuilder.group(Api, "summaries", (handlers) =>
  Effect.gen(function*() {
    const config = yield* Config
    const summarizer = yield* Summarizer
    return handlers.handle("summarize", ({ payload }) =>
      validate(payload, config).pipe(
        Effect.flatMap(summarizer.summarize),
        Effect.catchTags({
          InvalidDiff: (e) => Effect.fail(new BadRequest({ field: "diff", message: e.message })),
          RateLimitQueueFull: (e) => {
            const seconds = Math.max(1, Math.ceil(e.retryAfterMs / 1000))
            return HttpApp.appendPreResponseHandler((_, response) =>
              Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))
            ).pipe(Effect.zipRight(Effect.fail(new TooManyRequests({
              message: `The upstream queue is full (${e.queueDepth} waiting); retry later`,
              retryAfterSeconds: seconds
            }))))
          }
        })
      ))
  })
)

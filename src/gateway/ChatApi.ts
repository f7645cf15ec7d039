import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Authorization } from "../http/Authorization.js"

/** For the OpenAPI document only: the handler passes the body through undecoded (other fields included). */
const ChatCompletionRequest = Schema.Struct(
  {
    model: Schema.String.annotations({ description: "One of OPENROUTER_ALLOWED_MODELS" }),
    messages: Schema.Array(Schema.Unknown),
    temperature: Schema.optional(Schema.Number),
    max_tokens: Schema.optional(Schema.Int.annotations({ description: "At most OPENROUTER_MAX_TOKENS, which is also the default" })),
    max_completion_tokens: Schema.optional(Schema.Int),
    stream: Schema.optional(Schema.Boolean),
    stream_options: Schema.optional(Schema.Unknown),
    response_format: Schema.optional(Schema.Unknown),
    tools: Schema.optional(Schema.Array(Schema.Unknown)),
    tool_choice: Schema.optional(Schema.Unknown),
    models: Schema.optional(Schema.Array(Schema.String).annotations({ description: "OpenRouter's fallback list; each one allowed" }))
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "ChatCompletionRequest" })

const OpenAiError = Schema.Struct({
  error: Schema.Struct({ message: Schema.String, type: Schema.String, code: Schema.String, param: Schema.NullOr(Schema.String) })
}).annotations({ identifier: "OpenAiError" })

const ModelList = Schema.Struct({
  object: Schema.Literal("list"),
  data: Schema.Array(Schema.Struct({ id: Schema.String, object: Schema.Literal("model"), created: Schema.Int, owned_by: Schema.String }))
})

export class ChatApi extends HttpApiGroup.make("gateway")
  .add(
    HttpApiEndpoint.post("chatCompletions", "/v1/chat/completions")
      .setPayload(ChatCompletionRequest)
      .addSuccess(Schema.Unknown.annotations({ description: "OpenRouter's answer as it came: a chat.completion, or with stream: true its server-sent events" }))
      .addError(OpenAiError, { status: 400 })
      .annotate(OpenApi.Summary, "OpenAI-compatible chat completions through the service's budget, rate limit, retries and ledger")
      .annotate(
        OpenApi.Description,
        "Errors use OpenAI's body. 400 bad request or a model outside OPENROUTER_ALLOWED_MODELS; 402 `budget_exceeded` (hard cap or the caller's budget); 429 with Retry-After (full queue, provider rate limit); 502/504 after retries; 503 circuit open; upstream rejections keep their status. `X-Purpose` names the ledger row's purpose (default `chat`)."
      )
  )
  .add(
    HttpApiEndpoint.get("models", "/v1/models")
      .addSuccess(ModelList)
      .annotate(OpenApi.Summary, "The allowed models, in OpenAI's list shape")
  )
  .middleware(Authorization)
{}

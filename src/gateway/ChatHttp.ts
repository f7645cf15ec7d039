import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Api } from "../http/Api.js"
import { ChatGateway } from "./ChatGateway.js"
import { fromInvalidRequest, toResponse } from "./OpenAiError.js"

const purposePattern = /^[\w.:-]{1,100}$/

export const ChatHttp = HttpApiBuilder.group(Api, "gateway", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* ChatGateway
    return handlers
      .handleRaw("chatCompletions", ({ request }) =>
        Effect.gen(function*() {
          const purpose = request.headers["x-purpose"] ?? "chat"
          if (!purposePattern.test(purpose)) {
            return toResponse(fromInvalidRequest({ param: "X-Purpose", message: "X-Purpose must be 1 to 100 letters, digits, \"_\", \".\", \":\" or \"-\"" }))
          }
          const body = yield* Effect.either(request.json)
          if (body._tag === "Left") return toResponse(fromInvalidRequest({ param: "body", message: "The body is not valid JSON" }))
          return yield* gateway.chat(body.right, purpose)
        }))
      .handleRaw("models", () => Effect.succeed(gateway.models))
  })
)

import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Context, Deferred, Effect, Either, Exit, Fiber, Layer, Mailbox, Option, Ref, Schedule, Stream } from "effect"
import { Config } from "../Config.js"
import { CurrentCaller } from "../domain/Caller.js"
import type { Usage } from "../domain/Completion.js"
import type { UpstreamError } from "../domain/LlmError.js"
import { UpstreamInvalidResponse, UpstreamNetworkError, UpstreamUnusableAnswer } from "../domain/LlmError.js"
import type { ProviderUsage } from "../llm/CompletionProvider.js"
import { failure } from "../llm/ErrorClassifier.js"
import type { AnswerFacts, Exchange } from "../llm/LlmClient.js"
import { LlmClient } from "../llm/LlmClient.js"
import { parseUsage } from "../llm/OpenRouter.js"
import type { ChatRequest } from "./ChatRequest.js"
import { parseChatRequest } from "./ChatRequest.js"
import { fromInvalidRequest, fromLlmError, toResponse } from "./OpenAiError.js"
import { makeSseScanner } from "./SseScanner.js"
import type { StreamFacts } from "./SseScanner.js"
import { GatewayUpstream, rejection, transportError } from "./Upstream.js"

interface PlainAnswer {
  readonly bytes: Uint8Array
  readonly facts: AnswerFacts
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

const usageOf = (usage: ProviderUsage | undefined): Usage =>
  usage === undefined
    ? { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedPromptTokens: 0, costUsd: Option.none(), costSource: "unknown", tokensUnknown: true }
    : { ...usage, costSource: Option.isSome(usage.costUsd) ? "provider" : "unknown" }

/**
 * The three ways a 200 is still a failure (an `error` body, no choices, a choice finished with
 * `error`); anything else is the caller's answer, empty text and tool calls included.
 */
const checkAnswer = (data: Record<string, unknown>, generationId: string | null, model: string): Either.Either<AnswerFacts, UpstreamError> => {
  const usage = parseUsage(data["usage"])
  const facts: AnswerFacts = {
    model: typeof data["model"] === "string" ? data["model"] : model,
    provider: typeof data["provider"] === "string" ? data["provider"] : null,
    requestId: typeof data["id"] === "string" ? data["id"] : generationId,
    usage: usage ?? usageOf(undefined)
  }
  const invalid = (code: string, message: string) =>
    Either.left(new UpstreamInvalidResponse(failure({
      status: 200,
      code,
      message,
      provider: facts.provider ?? undefined,
      generationId: facts.requestId ?? undefined,
      model: facts.model,
      usage: usage === undefined ? undefined : usageOf(usage)
    })))
  if (data["error"] !== undefined) {
    const error = record(data["error"])
    return invalid(String(error["code"] ?? "error_in_body"), String(error["message"] ?? "Error in a 200 response"))
  }
  const choices = data["choices"]
  if (!Array.isArray(choices) || choices.length === 0) return invalid("no_choices", "Response has no choices")
  const choice = record(choices[0])
  if (choice["finish_reason"] === "error") {
    const error = record(choice["error"])
    return invalid(String(error["code"] ?? "finish_error"), String(error["message"] ?? "The model stopped with an error"))
  }
  return Either.right(facts)
}

/** Where a stream's bytes go, and what its handler waits for. */
interface Pipe {
  readonly mailbox: Mailbox.Mailbox<Uint8Array>
  /** Completed by the first byte for the caller, or by the failure of every attempt before it. */
  readonly first: Deferred.Deferred<void>
  /** Once a byte went out, a retry would repeat it: no more retries. */
  readonly committed: Ref.Ref<boolean>
  readonly clientGone: Deferred.Deferred<void>
}

/** OpenRouter's billed record appears a moment after a generation ends, so it is asked for a few times. */
const generationLookup = Schedule.exponential("250 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

const make = Effect.gen(function*() {
  const config = yield* Config
  const llm = yield* LlmClient
  const upstream = yield* GatewayUpstream

  const plain = (chat: ChatRequest): Exchange<PlainAnswer> => ({
    request: chat.request,
    send: Effect.gen(function*() {
      const model = chat.request.model
      const answer = yield* upstream.chat(chat.body, model)
      if (answer.status !== 200) return yield* Effect.flatMap(upstream.context(model), (ctx) => Effect.flatMap(rejection(answer, ctx), Effect.fail))
      const generationId = answer.headers.get("x-generation-id")
      const bytes = yield* Effect.tryPromise({
        try: () => answer.body.arrayBuffer().then((b) => new Uint8Array(b)),
        catch: (thrown) => transportError(thrown, model, generationId ?? undefined)
      })
      let data: Record<string, unknown>
      try {
        data = record(JSON.parse(new TextDecoder().decode(bytes)))
      } catch {
        return yield* new UpstreamInvalidResponse(failure({ status: 200, code: "unparseable_body", message: "Unreadable response", model, generationId: generationId ?? undefined }))
      }
      const facts = yield* checkAnswer(data, generationId, model)
      return { bytes, facts }
    }),
    facts: (a) => a.facts
  })

  /** The stream's usage with its cost: from its last chunk, else from `/generation`, else what is known. */
  const settle = (facts: StreamFacts): Effect.Effect<ProviderUsage | undefined> =>
    facts.usage !== undefined && Option.isSome(facts.usage.costUsd) || facts.id === null
      ? Effect.succeed(facts.usage)
      : upstream.generation(facts.id).pipe(
        Effect.flatMap(Option.match({ onNone: () => Effect.fail("not yet" as const), onSome: Effect.succeed })),
        Effect.delay("200 millis"),
        Effect.retry(generationLookup),
        Effect.map((found): ProviderUsage | undefined => found),
        Effect.orElseSucceed(() => facts.usage)
      )

  const streamed = (chat: ChatRequest, pipe: Pipe): Exchange<AnswerFacts> => ({
    request: chat.request,
    retryable: Effect.map(Ref.get(pipe.committed), (committed) => !committed),
    send: Effect.gen(function*() {
      const model = chat.request.model
      const answer = yield* upstream.chat(chat.body, model)
      if (answer.status !== 200) return yield* Effect.flatMap(upstream.context(model), (ctx) => Effect.flatMap(rejection(answer, ctx), Effect.fail))
      const scanner = makeSseScanner()
      const forward = (chunk: Uint8Array) =>
        Effect.gen(function*() {
          scanner.push(chunk)
          yield* pipe.mailbox.offer(chunk)
          if (!(yield* Ref.getAndSet(pipe.committed, true))) yield* Deferred.succeed(pipe.first, undefined)
        })
      const read = yield* Stream.fromAsyncIterable(answer.body as AsyncIterable<Uint8Array>, (e) => e).pipe(
        // The caller left: stop reading, which closes the upstream connection too.
        Stream.interruptWhen(Deferred.await(pipe.clientGone)),
        Stream.runForEach(forward),
        Effect.either
      )
      const facts = scanner.facts
      const generationId = facts.id ?? answer.headers.get("x-generation-id")
      const usage = yield* settle({ ...facts, id: generationId })
      const fields = { model: facts.model ?? model, provider: facts.provider ?? undefined, generationId: generationId ?? undefined, usage: usageOf(usage) }
      if (Either.isLeft(read)) {
        const cut = transportError(read.left, model)
        return yield* new UpstreamNetworkError(failure({ ...fields, status: 200, code: "stream_cut", message: `The stream was cut: ${cut.message}` }))
      }
      if (facts.error !== null) {
        return yield* new UpstreamInvalidResponse(failure({ ...fields, status: 200, code: facts.error.code, message: facts.error.message }))
      }
      if (!facts.done) {
        // Leaving is the caller's choice, not upstream's failure: permanent, so it does not count towards the circuit.
        return yield* (yield* Deferred.isDone(pipe.clientGone))
          ? new UpstreamUnusableAnswer(failure({ ...fields, status: 200, code: "client_closed", message: "The caller closed the stream" }))
          : new UpstreamNetworkError(failure({ ...fields, status: 200, code: "stream_cut", message: "The stream ended without [DONE]" }))
      }
      return { model: fields.model, provider: facts.provider, requestId: generationId, usage: usage ?? usageOf(undefined) }
    }),
    facts: (a) => a
  })

  const failed = (error: Parameters<typeof fromLlmError>[0]) =>
    Effect.gen(function*() {
      const reply = fromLlmError(error, yield* Clock.currentTimeMillis)
      const caller = yield* Effect.serviceOption(CurrentCaller)
      yield* Effect.logWarning("Chat completion failed").pipe(Effect.annotateLogs({
        status: reply.status,
        code: reply.code,
        error: error._tag,
        caller: Option.match(caller, { onNone: () => "", onSome: (c) => c.name ?? "" })
      }))
      return toResponse(reply)
    })

  const stream = (chat: ChatRequest, purpose: string) =>
    Effect.gen(function*() {
      const pipe: Pipe = {
        mailbox: yield* Mailbox.make<Uint8Array>(64),
        first: yield* Deferred.make<void>(),
        committed: yield* Ref.make(false),
        clientGone: yield* Deferred.make<void>()
      }
      const fiber = yield* llm.passThrough(streamed(chat, pipe), purpose).pipe(
        Effect.ensuring(Effect.all([
          Deferred.succeed(pipe.first, undefined),
          // The row is committed by now: the caller's stream may end.
          pipe.mailbox.end
        ], { discard: true })),
        Effect.forkDaemon
      )
      yield* Deferred.await(pipe.first).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
      if (!(yield* Ref.get(pipe.committed))) {
        // Nothing reached the caller: every attempt failed, so the answer is an error with its status.
        const exit = yield* Fiber.await(fiber)
        return yield* Exit.match(exit, {
          onSuccess: () => Effect.succeed(HttpServerResponse.empty({ status: 502 })),
          onFailure: (cause) =>
            Option.match(Cause.failureOption(cause), {
              onNone: () => Effect.succeed(HttpServerResponse.empty({ status: 502 })),
              onSome: ({ error }) => failed(error)
            })
        })
      }
      return HttpServerResponse.stream(
        Mailbox.toStream(pipe.mailbox).pipe(Stream.ensuring(Deferred.succeed(pipe.clientGone, undefined))),
        { contentType: "text/event-stream", headers: { "cache-control": "no-cache", "x-accel-buffering": "no" } }
      )
    })

  const chat = (raw: unknown, purpose: string): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
    Either.match(parseChatRequest(raw, config), {
      onLeft: (invalid) => Effect.succeed(toResponse(fromInvalidRequest(invalid))),
      onRight: (request) =>
        request.stream
          ? stream(request, purpose)
          : llm.passThrough(plain(request), purpose).pipe(
            Effect.map(({ answer }) =>
              HttpServerResponse.uint8Array(answer.bytes, {
                contentType: "application/json",
                ...(answer.facts.requestId === null ? {} : { headers: { "x-generation-id": answer.facts.requestId } })
              })
            ),
            Effect.catchAll(({ error }) => failed(error))
          )
    })

  const models = HttpServerResponse.unsafeJson({
    object: "list",
    data: config.openrouter.allowedModels.map((id) => ({ id, object: "model", created: 0, owned_by: id.split("/")[0] ?? "openrouter" }))
  })

  return { chat, models }
})

/**
 * `POST /v1/chat/completions` and `GET /v1/models` over the summaries' pipeline: every upstream
 * attempt passes the same circuit, caps, limiter and retries and gets its ledger row, with the
 * caller's name and the `X-Purpose`.
 */
export class ChatGateway extends Context.Tag("ChatGateway")<ChatGateway, {
  /** Never fails: refusals and upstream failures become OpenAI error bodies with an honest status. */
  readonly chat: (body: unknown, purpose: string) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  readonly models: HttpServerResponse.HttpServerResponse
}>() {
  static readonly layer = Layer.effect(ChatGateway, make)
}

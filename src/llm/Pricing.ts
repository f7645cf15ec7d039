import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type { BigDecimal } from "effect"
import { Context, Duration, Effect, Fiber, Layer, Option, Redacted, Ref } from "effect"
import * as Path from "node:path"
import { Config } from "../Config.js"
import * as PriceTable from "./PriceTable.js"

import type { ModelPrice, TokenCounts } from "./PriceTable.js"

export type { ModelPrice, TokenCounts } from "./PriceTable.js"

/**
 * Per-token prices from `GET {base}/models`, refreshed periodically, the last good table
 * persisted, overridable by `PRICING_OVERRIDES`. Used when a response carries no `usage.cost`
 * and to estimate a call's worst case before it is made.
 */
export class Pricing extends Context.Tag("Pricing")<Pricing, {
  readonly priceOf: (model: string) => Effect.Effect<Option.Option<ModelPrice>>
  /** prompt x prompt price + completion x completion price + request price, cached prompt tokens at the cache-read price. */
  readonly costOf: (model: string, tokens: TokenCounts) => Effect.Effect<Option.Option<BigDecimal.BigDecimal>>
}>() {
  /** Needs an `HttpClient` (the composition root gives undici's). */
  static readonly layer = Layer.scoped(Pricing, make())
}

/** How long the start waits for the first fetch before going on with the saved table. */
const firstFetchWait = Duration.seconds(3)
const fetchTimeout = Duration.seconds(15)

function make() {
  return Effect.gen(function*() {
    const config = yield* Config
    const client = yield* HttpClient.HttpClient
    const baseUrl = config.openrouter.baseUrl
    const file = PriceTable.fileFor(Path.resolve(config.database.dataDir), baseUrl)
    const overrides = PriceTable.fromOverrides(config.pricing.overrides)
    const table = yield* Ref.make<PriceTable.PriceTable>(new Map())

    const saved = yield* Effect.option(PriceTable.load(file, baseUrl))
    if (Option.isSome(saved)) {
      yield* Ref.set(table, saved.value)
      yield* Effect.logInfo("Loaded the saved price table").pipe(Effect.annotateLogs({ file, models: saved.value.size }))
    }

    const request = HttpClientRequest.get(`${config.openrouter.baseUrl.replace(/\/$/, "")}/models`).pipe(
      HttpClientRequest.acceptJson,
      (r) => Option.match(config.openrouter.apiKey, { onNone: () => r, onSome: (key) => HttpClientRequest.bearerToken(r, Redacted.value(key)) })
    )

    const refresh = Effect.gen(function*() {
      const response = yield* client.execute(request).pipe(Effect.flatMap(HttpClientResponse.filterStatusOk))
      const body = yield* HttpClientResponse.schemaBodyJson(PriceTable.ModelsResponse)(response)
      const { table: fetched, wire } = PriceTable.fromModels(body.data)
      // An empty table is a broken answer, not a price list: keep the last good one.
      if (fetched.size === 0) return yield* Effect.logWarning("Price list had no usable model; keeping the last good table")
      yield* Ref.set(table, fetched)
      yield* Effect.logInfo("Price table refreshed").pipe(Effect.annotateLogs("models", fetched.size))
      yield* PriceTable.save(file, baseUrl, wire).pipe(
        Effect.catchAll((e) => Effect.logWarning("Could not save the price table").pipe(Effect.annotateLogs("error", e.message)))
      )
    }).pipe(
      Effect.scoped,
      Effect.timeout(fetchTimeout),
      Effect.catchAll((error) =>
        Effect.logWarning("Price list fetch failed; keeping the last good table").pipe(
          Effect.annotateLogs("error", `${error._tag}: ${error.message}`)
        )
      )
    )

    // With the AI off no call is priced: nothing is fetched (no request leaves for OpenRouter).
    const aiOn = config.llm.aiEnabled && Option.isSome(config.openrouter.apiKey)
    if (aiOn) {
      const first = yield* Effect.forkScoped(refresh)
      yield* Effect.ignore(Effect.timeout(Fiber.join(first), firstFetchWait))
      yield* Effect.forkScoped(Effect.forever(Effect.delay(refresh, Duration.millis(config.pricing.refreshMs))))
    }

    const priceOf = (model: string) =>
      Effect.map(Ref.get(table), (t) => Option.orElse(Option.fromNullable(overrides.get(model)), () => PriceTable.lookup(t, model)))

    return Pricing.of({
      priceOf,
      costOf: (model, tokens) => Effect.map(priceOf(model), Option.map((price) => PriceTable.cost(price, tokens)))
    })
  }).pipe(Effect.annotateLogs("service", "Pricing"))
}

import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { GatewayUpstream } from "../../../src/gateway/Upstream.js"
import { CompletionProvider } from "../../../src/llm/CompletionProvider.js"
import { OpenRouter } from "../../../src/llm/OpenRouter.js"
import { Scrubber } from "../../../src/llm/Scrubber.js"
import { UpstreamPool } from "../../../src/llm/UpstreamPool.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { providerRequest as request } from "../../support/ProviderRequest.js"
import { configLayer } from "../../support/TestDatabase.js"


describe("UpstreamPool", () => {
  it.scopedLive("the summaries' client and the gateway share one pool of connections, closed with its layer", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const layer = Layer.mergeAll(OpenRouter, GatewayUpstream.layer).pipe(
        Layer.provideMerge(Layer.mergeAll(UpstreamPool.layer, Scrubber.layer)),
        Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-emulator", OPENROUTER_BASE_URL: emulator.baseUrl }))
      )
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(layer, scope)
      const { pool } = Context.get(context, UpstreamPool)
      const summary = Effect.flatMap(CompletionProvider, (p) => p.complete(request))
      const chat = Effect.flatMap(GatewayUpstream, (g) => g.chat(JSON.stringify({ model: request.model, messages: request.messages }), request.model))
        .pipe(Effect.tap((raw) => Effect.promise(() => raw.body.text())))
      // At once, so each needs a connection of its own: the pool holds both only if both used it.
      const [answer, raw] = yield* Effect.all([summary, chat], { concurrency: 2 }).pipe(Effect.provide(context))
      expect([answer.text !== "", raw.status, emulator.completionCount()]).toEqual([true, 200, 2])
      expect(pool.stats.connected).toBe(2)
      yield* Scope.close(scope, Exit.void)
      expect(pool.closed).toBe(true)
    }))
})

import { describe, expect, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer, Option } from "effect"
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Money from "../../../src/domain/Money.js"
import { Pricing } from "../../../src/llm/Pricing.js"
import * as PriceTable from "../../../src/llm/PriceTable.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { configLayer } from "../../support/TestDatabase.js"

const tokens = { promptTokens: 29, completionTokens: 33, cachedPromptTokens: 0 }

const pricingWith = (env: Record<string, string>) => Pricing.layer.pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.provide(configLayer(env)))

const costOf = (model: string) =>
  Effect.flatMap(Pricing, (p) => p.costOf(model, tokens)).pipe(Effect.map(Option.map(Money.format)))

describe("Pricing", () => {
  it.scopedLive("prices from the provider's /models, lets configuration override it, and knows nothing of unlisted models", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const dataDir = mkdtempSync(Path.join(tmpdir(), "pricing-"))
      const layer = pricingWith({
        OPENROUTER_BASE_URL: emulator.baseUrl,
        OPENROUTER_API_KEY: "sk-or-v1-test",
        DATA_DIR: dataDir,
        PRICING_OVERRIDES: JSON.stringify({ "openai/gpt-4o": { prompt: "0.000001", completion: "0.000002" } })
      })
      const [mini, overridden, unknown] = yield* Effect.all([
        costOf("openai/gpt-4o-mini"),
        costOf("openai/gpt-4o"),
        costOf("nobody/nothing")
      ]).pipe(Effect.provide(layer))
      expect(mini).toEqual(Option.some("0.00002415"))
      expect(overridden).toEqual(Option.some("0.000095"))
      expect(unknown).toEqual(Option.none())
      expect(emulator.modelsCalls()).toBe(1)
      expect(existsSync(PriceTable.fileFor(dataDir, emulator.baseUrl))).toBe(true)
    }))

  it.scopedLive("a restart without network still prices from the saved table, and a failed fetch does not stop the start", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const dataDir = mkdtempSync(Path.join(tmpdir(), "pricing-"))
      const env = { OPENROUTER_BASE_URL: emulator.baseUrl, OPENROUTER_API_KEY: "sk-or-v1-test", DATA_DIR: dataDir }
      yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env))
      emulator.modelsFault({ kind: "status", status: 503 })
      const afterOutage = yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env))
      expect(afterOutage).toEqual(Option.some("0.00002415"))
      expect(emulator.modelsCalls()).toBe(2)
      const nothingSaved = yield* Effect.provide(
        costOf("openai/gpt-4o-mini"),
        pricingWith({
          OPENROUTER_BASE_URL: "http://127.0.0.1:9/api/v1",
          OPENROUTER_API_KEY: "sk-or-v1-test",
          DATA_DIR: mkdtempSync(Path.join(tmpdir(), "pricing-"))
        })
      )
      expect(nothingSaved).toEqual(Option.none())
    }))

  it.scopedLive("with the AI off (no key, or AI_ENABLED=false) the price list is not fetched", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const dataDir = mkdtempSync(Path.join(tmpdir(), "pricing-"))
      yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith({ OPENROUTER_BASE_URL: emulator.baseUrl, DATA_DIR: dataDir }))
      yield* Effect.provide(
        costOf("openai/gpt-4o-mini"),
        pricingWith({ OPENROUTER_BASE_URL: emulator.baseUrl, OPENROUTER_API_KEY: "sk-or-v1-test", AI_ENABLED: "false", DATA_DIR: dataDir })
      )
      expect(emulator.modelsCalls()).toBe(0)
    }))

  it.scopedLive("a table saved for one base URL is not used for another; each base URL gets its own file", () =>
    Effect.gen(function*() {
      const first = yield* makeEmulator()
      const second = yield* makeEmulator({ prices: { "openai/gpt-4o-mini": { prompt: "0.000001", completion: "0.000001" } } })
      const dataDir = mkdtempSync(Path.join(tmpdir(), "pricing-"))
      const env = (baseUrl: string) => ({ OPENROUTER_BASE_URL: baseUrl, OPENROUTER_API_KEY: "sk-or-v1-test", DATA_DIR: dataDir })
      yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env(first.baseUrl)))
      second.modelsFault({ kind: "status", status: 503 })
      const elsewhere = yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env(second.baseUrl)))
      expect(elsewhere).toEqual(Option.none())

      second.modelsFault(null)
      const ownPrices = yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env(second.baseUrl)))
      expect(ownPrices).toEqual(Option.some("0.000062"))
      first.modelsFault({ kind: "status", status: 503 })
      const backHome = yield* Effect.provide(costOf("openai/gpt-4o-mini"), pricingWith(env(first.baseUrl)))
      expect(backHome).toEqual(Option.some("0.00002415"))
      expect(PriceTable.fileFor(dataDir, first.baseUrl)).not.toBe(PriceTable.fileFor(dataDir, second.baseUrl))
    }))
})

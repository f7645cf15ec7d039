import { BigDecimal, Data, Effect, Either, Option, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import type { PriceOverrides } from "../Config.js"
import * as Money from "../domain/Money.js"
import type { ModelPrice, TokenCounts } from "./Pricing.js"

export type PriceTable = ReadonlyMap<string, ModelPrice>

export class PriceFileError extends Data.TaggedError("PriceFileError")<{ readonly message: string; readonly cause: unknown }> {}

/** Price text as OpenRouter sends it; "-1" (variable pricing, e.g. `openrouter/auto`) does not decode. */
const Price = Schema.String.pipe(Schema.pattern(/^\d+(\.\d+)?$/))

/** One model of `GET /models` (or of the persisted file, which keeps the same shape). */
const WireModel = Schema.Struct({
  id: Schema.String,
  context_length: Schema.optional(Schema.NullOr(Schema.Number)),
  pricing: Schema.Struct({
    prompt: Price,
    completion: Price,
    request: Schema.optional(Schema.NullOr(Schema.String)),
    input_cache_read: Schema.optional(Schema.NullOr(Schema.String))
  })
})
type WireModel = typeof WireModel.Type

/** Models are decoded one by one: a model with an odd price is skipped, not the whole table. */
export const ModelsResponse = Schema.Struct({ data: Schema.Array(Schema.Unknown) })

const decimal = (text: string | null | undefined): Option.Option<BigDecimal.BigDecimal> =>
  typeof text === "string" && /^\d+(\.\d+)?$/.test(text) ? Option.map(BigDecimal.fromString(text), BigDecimal.normalize) : Option.none()

const isZero = (d: BigDecimal.BigDecimal) => BigDecimal.isZero(d)

const toPrice = (m: WireModel): ModelPrice => {
  const prompt = BigDecimal.normalize(BigDecimal.unsafeFromString(m.pricing.prompt))
  // A zero cache-read price beside a paid prompt means "not listed" (the field defaults to "0"):
  // cached tokens are then billed at the prompt price, over-estimating rather than under.
  const cacheRead = Option.filter(decimal(m.pricing.input_cache_read), (c) => !isZero(c) || isZero(prompt))
  return {
    prompt,
    completion: BigDecimal.normalize(BigDecimal.unsafeFromString(m.pricing.completion)),
    request: Option.getOrElse(decimal(m.pricing.request), () => BigDecimal.fromBigInt(0n)),
    cacheRead,
    contextLength: Option.fromNullable(m.context_length)
  }
}

/** The models of a `/models` body that carry usable prices. */
export const fromModels = (data: ReadonlyArray<unknown>): { readonly table: PriceTable; readonly wire: ReadonlyArray<WireModel> } => {
  const wire: Array<WireModel> = []
  for (const item of data) Either.map(Schema.decodeUnknownEither(WireModel)(item), (m) => wire.push(m))
  return { table: new Map(wire.map((m) => [m.id, toPrice(m)])), wire }
}

export const fromOverrides = (overrides: PriceOverrides): PriceTable =>
  new Map(Object.entries(overrides).map(([id, p]) => [id, toPrice({ id, pricing: { ...p, input_cache_read: null } })]))

/** Saved beside the data so a restart without network still prices. */
export const save = (file: string, wire: ReadonlyArray<WireModel>) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(Path.dirname(file), { recursive: true })
      const temporary = `${file}.${process.pid}.tmp`
      await fs.writeFile(temporary, JSON.stringify({ savedAt: new Date().toISOString(), data: wire }))
      await fs.rename(temporary, file)
    },
    catch: (cause) => new PriceFileError({ message: `Could not save ${file}`, cause })
  })

export const load = (file: string) =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) => new PriceFileError({ message: `Could not read ${file}`, cause })
  }).pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(ModelsResponse))),
    Effect.map((body) => fromModels(body.data).table)
  )

/** Exact: prompt x prompt price + completion x completion price + request price, cached prompt tokens at the cache-read price. */
export const cost = (price: ModelPrice, tokens: TokenCounts): BigDecimal.BigDecimal => {
  const n = (k: number) => BigDecimal.fromBigInt(BigInt(Math.max(0, Math.trunc(k))))
  const cached = Math.min(Math.max(0, tokens.cachedPromptTokens), Math.max(0, tokens.promptTokens))
  const cacheRead = Option.getOrElse(price.cacheRead, () => price.prompt)
  return Money.sum([
    BigDecimal.multiply(n(tokens.promptTokens - cached), price.prompt),
    BigDecimal.multiply(n(cached), cacheRead),
    BigDecimal.multiply(n(tokens.completionTokens), price.completion),
    price.request
  ])
}

/** OpenRouter sometimes names a dated snapshot (`openai/gpt-4o-mini-2024-07-18`) of a listed model. */
export const lookup = (table: PriceTable, model: string): Option.Option<ModelPrice> =>
  Option.orElse(Option.fromNullable(table.get(model)), () => Option.fromNullable(table.get(model.replace(/-\d{4}-\d{2}-\d{2}$/, ""))))

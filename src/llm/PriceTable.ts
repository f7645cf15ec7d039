import { BigDecimal, Data, Effect, Either, Option, Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import type { PriceOverrides } from "../Config.js"
import * as Money from "../domain/Money.js"

/** USD per token (and per request), exact. */
export interface ModelPrice {
  readonly prompt: BigDecimal.BigDecimal
  readonly completion: BigDecimal.BigDecimal
  readonly request: BigDecimal.BigDecimal
  readonly cacheRead: Option.Option<BigDecimal.BigDecimal>
  readonly contextLength: Option.Option<number>
}

export interface TokenCounts {
  readonly promptTokens: number
  readonly completionTokens: number
  readonly cachedPromptTokens: number
}

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

/**
 * Where the table fetched from `baseUrl` is saved under `dataDir`: one file per base URL, so a
 * service pointed elsewhere (a local server, another gateway) never prices with another's table.
 */
export const fileFor = (dataDir: string, baseUrl: string) =>
  Path.join(dataDir, `pricing-${createHash("sha256").update(normalizeBase(baseUrl)).digest("hex").slice(0, 16)}.json`)

const normalizeBase = (baseUrl: string) => baseUrl.replace(/\/+$/, "")

const SavedTable = Schema.Struct({ baseUrl: Schema.String, data: Schema.Array(Schema.Unknown) })

/**
 * Saved beside the data so a restart without network still prices. Written to a file of this
 * process and renamed over the old one, so a reader (another process) sees one whole table.
 */
export const save = (file: string, baseUrl: string, wire: ReadonlyArray<WireModel>) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(Path.dirname(file), { recursive: true, mode: 0o700 })
      const temporary = `${file}.${process.pid}.tmp`
      const text = JSON.stringify({ baseUrl: normalizeBase(baseUrl), savedAt: new Date().toISOString(), data: wire })
      await fs.writeFile(temporary, text, { mode: 0o600 })
      await fs.rename(temporary, file)
    },
    catch: (cause) => new PriceFileError({ message: `Could not save ${file}`, cause })
  })

/** The table saved for `baseUrl`; a file saved for another base URL fails to load. */
export const load = (file: string, baseUrl: string) =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) => new PriceFileError({ message: `Could not read ${file}`, cause })
  }).pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(SavedTable))),
    Effect.filterOrFail(
      (saved) => saved.baseUrl === normalizeBase(baseUrl),
      (saved) => new PriceFileError({ message: `${file} holds the prices of ${saved.baseUrl}`, cause: null })
    ),
    Effect.map((saved) => fromModels(saved.data).table)
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

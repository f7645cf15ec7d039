import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Clock, Context, Effect, Layer, Metric, Option, Schema } from "effect"
import { Config } from "../Config.js"
import { taggedMetric } from "../metrics/TaggedMetric.js"
import { Grounding, Structured } from "./StructuredSummary.js"
import { Summary } from "./Summary.js"

const lookups = taggedMetric(Metric.counter("summaries_cache_lookups_total", { description: "Summary cache lookups by result" }), "result")

/** Written before the field existed: read as null. */
const addedLater = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(Schema.NullOr(schema), { default: () => null })

/** A cached summary as a row holds it; entries written before `fallbackDetail` or the structured result existed lack them. */
const CachedSummary = Schema.Struct({
  ...Summary.fields,
  fallbackDetail: addedLater(Schema.String),
  structured: addedLater(Structured),
  grounding: addedLater(Grounding),
  structuredError: addedLater(Schema.String)
})

/**
 * Summaries already paid for, keyed by a hash of the prompt version, the normalized change, the
 * model and the parameters. A cache that cannot be reached, or an entry that cannot be read, is a
 * miss, never an error.
 */
export class SummaryCache extends Context.Tag("SummaryCache")<SummaryCache, {
  /** Off with `SUMMARY_CACHE_TTL_MS=0`: then nothing is looked up or kept, so no key needs computing. */
  readonly enabled: boolean
  readonly get: (key: string) => Effect.Effect<Option.Option<Summary>>
  readonly put: (key: string, summary: Summary) => Effect.Effect<void>
}>() {
  static readonly layer = Layer.effect(SummaryCache, Effect.gen(function*() {
    const { summary: settings } = yield* Config
    const sql = yield* SqlClient.SqlClient
    const enabled = settings.cacheTtlMs > 0

    const find = SqlSchema.findOne({
      Request: Schema.String,
      Result: Schema.Struct({ response: CachedSummary }),
      execute: (key) => sql`SELECT response FROM summary_cache WHERE key = ${key} AND expires_at > now()`
    })

    const get = (key: string) =>
      !enabled ? Effect.succeedNone : find(key).pipe(
        Effect.map(Option.map((row): Summary => row.response)),
        Effect.tap((hit) => Metric.increment(lookups(Option.isSome(hit) ? "hit" : "miss"))),
        Effect.catchTags({
          ParseError: () =>
            Metric.increment(lookups("miss")).pipe(
              Effect.zipRight(Effect.logWarning("Summary cache entry unreadable; summarizing again")),
              Effect.as(Option.none())
            ),
          SqlError: (error) => Effect.logWarning("Summary cache unavailable", error._tag).pipe(Effect.as(Option.none()))
        })
      )

    const put = (key: string, summary: Summary) =>
      !enabled ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql`
          INSERT INTO summary_cache (key, response, expires_at)
          VALUES (${key}, ${JSON.stringify(summary)}::jsonb, ${new Date(now + settings.cacheTtlMs)})
          ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, created_at = now(), expires_at = EXCLUDED.expires_at
        `.pipe(Effect.asVoid, Effect.catchAll((error) => Effect.logWarning("Summary cache write failed", error._tag))))

    return SummaryCache.of({ enabled, get, put })
  }))
}

import { Either, Schema } from "effect"
import { fromTexts, fromUnifiedDiff, InvalidDiff } from "./Change.js"
import { condense } from "./Condense.js"
import { isCosmeticOnly } from "./Normalize.js"

/** A change as a caller sends it: a unified diff, or both full texts. */
export const ChangeInput = Schema.Union(
  Schema.Struct({ diff: Schema.String }),
  Schema.Struct({ before: Schema.String, after: Schema.String })
)
export type ChangeInput = typeof ChangeInput.Type

const Section = Schema.Struct({ heading: Schema.NullOr(Schema.String), text: Schema.String })

/** What a summary needs of a change: the diff to hand back, the condensed sections, and whether only formatting changed. */
export const ProcessedChange = Schema.Struct({
  rawDiff: Schema.String,
  sections: Schema.Array(Section),
  /** True when the wording is the same (no model call is needed). */
  cosmetic: Schema.Boolean
})
export type ProcessedChange = typeof ProcessedChange.Type

/** The one request the change workers answer. */
export class ProcessChange extends Schema.TaggedRequest<ProcessChange>()("ProcessChange", {
  failure: InvalidDiff,
  success: ProcessedChange,
  payload: { change: ChangeInput }
}) {}

/**
 * All the CPU work a summary does on its change: parse or compute the diff, condense it, and the
 * cosmetic check. Pure and synchronous; the server runs it in a worker thread.
 */
export const processChange = (input: ChangeInput): Either.Either<ProcessedChange, InvalidDiff> => {
  const parsed = "diff" in input ? fromUnifiedDiff(input.diff) : Either.right(fromTexts(input.before, input.after))
  return Either.map(parsed, (change) => {
    const sections = condense(change)
    return { rawDiff: change.rawDiff, sections, cosmetic: sections.length === 0 || isCosmeticOnly(change) }
  })
}

import { Either, Schema } from "effect"
import { createHash } from "node:crypto"
import { fromTexts, fromUnifiedDiff, type InvalidDiff } from "./Change.js"
import { condense, render } from "./Condense.js"
import { GroundingBasis, groundingBasis } from "./Grounding.js"
import { isCosmeticOnly } from "./Normalize.js"
import { planWithin, truncate } from "./Split.js"
import { estimateTokens } from "./Tokens.js"

/** A change as a caller sends it: a unified diff, or both full texts. */
export const ChangeInput = Schema.Union(
  Schema.Struct({ diff: Schema.String }),
  Schema.Struct({ before: Schema.String, after: Schema.String })
)
export type ChangeInput = typeof ChangeInput.Type

/** How the change text fits the model's input budget. */
export const ChangeLayout = Schema.Struct({
  budgetTokens: Schema.Number,
  /** At most this many parts when split (`SUMMARY_MAX_PARTS`). */
  maxParts: Schema.Number,
  largeChange: Schema.Literal("split", "truncate"),
  /** Whether quotes will be checked (structured summaries): only then is the grounding basis built and sent back. */
  grounding: Schema.optional(Schema.Boolean)
})
export type ChangeLayout = typeof ChangeLayout.Type

/** The condensed change as the model will read it: whole, truncated with a notice, or in parts. */
export const ChangeText = Schema.Union(
  Schema.TaggedStruct("Whole", { text: Schema.String }),
  Schema.TaggedStruct("Truncated", { text: Schema.String }),
  Schema.TaggedStruct("Parts", { texts: Schema.Array(Schema.String) })
)
export type ChangeText = typeof ChangeText.Type

/** What a summary needs of a change: the diff to hand back, whether only formatting changed, and the text for the model. */
export const ProcessedChange = Schema.Struct({
  rawDiff: Schema.String,
  /** True when the wording is the same (no model call is needed). */
  cosmetic: Schema.Boolean,
  /** SHA-256 of the whole condensed change, for the summary cache's key. */
  textHash: Schema.String,
  changeText: ChangeText,
  /** What structured summaries' quotes are checked against; null when the layout did not ask for it. */
  grounding: Schema.NullOr(GroundingBasis)
})
export type ProcessedChange = typeof ProcessedChange.Type

/** What a change worker thread is asked: one change, numbered so that its reply finds its caller. */
export interface ChangeRequest {
  readonly id: number
  readonly change: ChangeInput
  readonly layout: ChangeLayout
}

/** A change worker's reply: the processed change, why the diff is unreadable, or the defect it hit. */
export type ChangeReply =
  | { readonly id: number; readonly _tag: "Processed"; readonly value: ProcessedChange }
  | { readonly id: number; readonly _tag: "InvalidDiff"; readonly message: string }
  | { readonly id: number; readonly _tag: "Defect"; readonly message: string }

/** The condensed change laid out for the model's input budget. */
const layOut = (sections: ReturnType<typeof condense>, text: string, layout: ChangeLayout): ChangeText => {
  if (estimateTokens(text) <= layout.budgetTokens) return { _tag: "Whole", text }
  if (layout.largeChange === "truncate") return { _tag: "Truncated", text: truncate(sections, layout.budgetTokens).text }
  return { _tag: "Parts", texts: planWithin(sections, layout.budgetTokens, layout.maxParts).map((part) => part.text) }
}

/**
 * All the work in proportion to a change's size that a summary does: parse or compute the diff,
 * condense it, the cosmetic check, render, hash and lay the text out for the budget. Pure and
 * synchronous; the server runs it in a worker thread, so the event loop only moves its result.
 */
export const processChange = (change: ChangeInput, layout: ChangeLayout): Either.Either<ProcessedChange, InvalidDiff> => {
  const parsed = "diff" in change ? fromUnifiedDiff(change.diff) : Either.right(fromTexts(change.before, change.after))
  return Either.map(parsed, (parsedChange): ProcessedChange => {
    const sections = condense(parsedChange)
    const cosmetic = sections.length === 0 || isCosmeticOnly(parsedChange)
    const text = cosmetic ? "" : render(sections)
    return {
      rawDiff: parsedChange.rawDiff,
      cosmetic,
      textHash: createHash("sha256").update(text).digest("hex"),
      changeText: cosmetic ? { _tag: "Whole", text } : layOut(sections, text, layout),
      grounding: cosmetic || layout.grounding !== true ? null : groundingBasis(parsedChange, sections)
    }
  })
}

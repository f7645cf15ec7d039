import { Either, JSONSchema, ParseResult, Schema } from "effect"

/** What a change is about; one topic per item, as Open Terms Archive's memos and ToS;DR's points do. */
export const Topic = Schema.Literal(
  "data-collection",
  "data-sharing",
  "data-retention",
  "tracking-advertising",
  "ai-training",
  "user-rights",
  "security",
  "children",
  "content-licensing",
  "account-termination",
  "payments-fees",
  "dispute-resolution",
  "liability",
  "jurisdiction",
  "other"
)
export type Topic = typeof Topic.Type

export const Severity = Schema.Literal("low", "medium", "high", "critical")
export type Severity = typeof Severity.Type

export const Kind = Schema.Literal("added", "removed", "modified")
export type Kind = typeof Kind.Type

/** How serious each severity is; the prompt and the README quote it word for word. */
export const SEVERITY_RUBRIC: ReadonlyArray<readonly [Severity, string]> = [
  ["low", "clarity, wording or contact details, with no effect on rights."],
  ["medium", "a change in practice within what a user would expect."],
  ["high", "new collection or sharing, a longer retention period, or reduced rights or remedies."],
  ["critical", "sale of personal data, training on user content without opt-out, a waiver of class action or of the courts, or unilateral fees."]
]

export const HEADLINE_MAX_CHARS = 140

/** One point of the model's answer. */
export const AnswerChange = Schema.Struct({
  topic: Topic,
  kind: Kind.annotations({ description: "added: new text; removed: text taken out; modified: text reworded" }),
  what: Schema.String.annotations({ description: "What changed, in plain language" }),
  impact: Schema.String.annotations({ description: "What it means for the person who accepted the terms" }),
  severity: Severity,
  quotes: Schema.NonEmptyArray(Schema.String).annotations({
    description: "Short verbatim extracts of the changed text: the added text for added and modified, the removed text for removed"
  })
})
export type AnswerChange = typeof AnswerChange.Type

/**
 * The model's answer. Its JSON schema (`answerJsonSchema`) is what the request asks for, so the
 * schema sent and the decoding are one source of truth. Kept to what OpenAI's strict mode accepts:
 * every property required, no extra properties, no string lengths (the headline is clipped in code).
 */
export const Answer = Schema.Struct({
  headline: Schema.String.annotations({
    description: `One sentence of at most ${HEADLINE_MAX_CHARS} characters, present tense, with the service as subject when it is known`
  }),
  cosmetic: Schema.Boolean.annotations({ description: "true when nothing changes in meaning (wording, formatting, dates, links)" }),
  changes: Schema.Array(AnswerChange)
})
export type Answer = typeof Answer.Type

/** The name the schema is sent under (`json_schema.name`). */
export const ANSWER_SCHEMA_NAME = "policy_change_summary"

let builtJsonSchema: Record<string, unknown> | undefined

/**
 * `JSONSchema.make(Answer)` as sent: the `$schema` meta key is left out, since it describes the
 * document rather than the answer and strict-mode servers do not need it.
 */
export const answerJsonSchema = (): Record<string, unknown> => {
  // Built once: JSONSchema.make walks the whole schema (about 0.3 ms), and every structured call sends it.
  if (builtJsonSchema === undefined) {
    const { $schema: _, ...schema } = JSONSchema.make(Answer) as unknown as Record<string, unknown>
    builtJsonSchema = schema
  }
  return builtJsonSchema
}

// ---- the result in the API --------------------------------------------------------------------

export const StructuredChange = Schema.Struct({
  ...AnswerChange.fields,
  /** Every quote of the item is found in the change (the added side, the removed side for `removed`). */
  grounded: Schema.Boolean
})
export type StructuredChange = typeof StructuredChange.Type

export const SummarySeverity = Schema.Literal("none", ...Severity.literals)
export type SummarySeverity = typeof SummarySeverity.Type

export const Structured = Schema.Struct({
  headline: Schema.String,
  /** The highest item severity, or `none` when the change is cosmetic. */
  severity: SummarySeverity,
  cosmetic: Schema.Boolean,
  changes: Schema.Array(StructuredChange)
}).annotations({
  description: "The summary as data: a headline, and one item per point with verbatim quotes checked against the change",
  examples: [{
    headline: "Google may now use publicly available information to train its AI models and build AI products.",
    severity: "high",
    cosmetic: false,
    changes: [{
      topic: "ai-training",
      kind: "modified",
      what: "Publicly available information may now train Google's AI models, not only its language models, and products like Bard and Cloud AI.",
      impact: "What you publish openly can be used to build Google's AI products.",
      severity: "high",
      quotes: ["train Google's AI models and build products and features, like Google Translate, Bard and Cloud AI capabilities"],
      grounded: true
    }]
  }]
})
export type Structured = typeof Structured.Type

export const Grounding = Schema.Struct({
  /** Quotes checked, and found in the change. */
  quotes: Schema.Int,
  grounded: Schema.Int,
  /** Changed sections of the condensed change, and those at least one grounded quote falls in. */
  sections: Schema.Int,
  covered: Schema.Int
}).annotations({ examples: [{ quotes: 1, grounded: 1, sections: 2, covered: 1 }] })
export type Grounding = typeof Grounding.Type

const SEVERITY_ORDER: ReadonlyArray<SummarySeverity> = ["none", "low", "medium", "high", "critical"]

/** The highest of `severities`; `none` for none at all. */
export const highest = (severities: ReadonlyArray<SummarySeverity>): SummarySeverity =>
  severities.reduce<SummarySeverity>((top, s) => (SEVERITY_ORDER.indexOf(s) > SEVERITY_ORDER.indexOf(top) ? s : top), "none")

/** At most HEADLINE_MAX_CHARS characters, cut at a word with an ellipsis when longer. */
export const clipHeadline = (headline: string): string => {
  const text = headline.replace(/\s+/g, " ").trim()
  if (text.length <= HEADLINE_MAX_CHARS) return text
  const space = text.lastIndexOf(" ", HEADLINE_MAX_CHARS - 1)
  return `${text.slice(0, space > HEADLINE_MAX_CHARS * 0.6 ? space : HEADLINE_MAX_CHARS - 1)}…`
}

/**
 * The result from an answer whose items were checked. A change is cosmetic when the model says so
 * and nothing in it is above `low`, or when it has no item at all.
 */
export const toStructured = (answer: Answer, grounded: ReadonlyArray<boolean>): Structured => {
  const changes = answer.changes.map((change, i) => ({ ...change, grounded: grounded[i] ?? false }))
  const cosmetic = changes.length === 0 || (answer.cosmetic && changes.every((c) => c.severity === "low"))
  return {
    headline: clipHeadline(answer.headline),
    severity: cosmetic ? "none" : highest(changes.map((c) => c.severity)),
    cosmetic,
    changes
  }
}

const decodeAnswer = Schema.decodeUnknownEither(Answer, { errors: "first", onExcessProperty: "ignore" })

/** Models sometimes wrap JSON in a Markdown code fence even when told not to. */
const unfenced = (text: string): string => {
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text.trim())
  return fenced === null ? text.trim() : fenced[1]!
}

const MAX_ERROR_CHARS = 300

const short = (message: string): string => {
  const oneLine = message.replace(/\s+/g, " ").trim()
  return oneLine.length <= MAX_ERROR_CHARS ? oneLine : `${oneLine.slice(0, MAX_ERROR_CHARS - 1)}…`
}

/** The model's text as an `Answer`, or a short message saying why it is not one. */
export const parseAnswer = (text: string): Either.Either<Answer, string> => {
  let json: unknown
  try {
    json = JSON.parse(unfenced(text))
  } catch (error) {
    return Either.left(short(`not JSON: ${error instanceof Error ? error.message : String(error)}`))
  }
  return Either.mapLeft(decodeAnswer(json), (error) => {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    const detail = issues.map((issue) => `${issue.path.length === 0 ? "" : `at ${issue.path.join(".")}: `}${issue.message}`).join("; ")
    return short(`does not match the schema: ${detail}`)
  })
}

const SEVERITY_LABEL: Record<SummarySeverity, string> = { none: "no effect", low: "low", medium: "medium", high: "high", critical: "critical" }

/** The `summary` text of a structured result, for callers that read text: the headline, then one bullet per item. */
export const renderStructured = (structured: Structured): string => {
  const bullets = structured.changes.map((c) => `- ${c.what.trim()} ${c.impact.trim()} (${SEVERITY_LABEL[c.severity]}: ${c.topic})`)
  return [structured.headline, ...(bullets.length === 0 ? [] : ["", ...bullets])].join("\n")
}

/** The result of a change that is only formatting, answered without a call. */
export const cosmeticStructured = (headline: string): Structured => ({ headline: clipHeadline(headline), severity: "none", cosmetic: true, changes: [] })

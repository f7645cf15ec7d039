import { describe, expect, it } from "@effect/vitest"
import { Either, JSONSchema, Option, Schema, SchemaAST } from "effect"
import { fromUnifiedDiff } from "../../../src/summarize/Change.js"
import { condense } from "../../../src/summarize/Condense.js"
import { groundingBasis, makeGrounder } from "../../../src/summarize/Grounding.js"
import { buildStructuredMessages, maxItemsFor, responseFormatOf, SCHEMA_INTRO, SEVERITY_RULES } from "../../../src/summarize/Prompt.js"
import {
  Answer,
  answerJsonSchema,
  clipHeadline,
  parseAnswer,
  renderStructured,
  SEVERITY_RUBRIC,
  Structured,
  toStructured
} from "../../../src/summarize/StructuredSummary.js"
import { fixture } from "./fixtures.js"

const item = (severity: "low" | "medium" | "high" | "critical", quote = "We share your data") => ({
  topic: "data-sharing" as const,
  kind: "added" as const,
  what: "Data is now shared.",
  impact: "Partners see your data.",
  severity,
  quotes: [quote] as const
})

// What OpenAI's strict mode accepts (its structured-outputs guide): every object closed and fully
// required, and none of the keywords it rejects.
const UNSUPPORTED = ["minLength", "maxLength", "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties", "maxProperties", "contains", "uniqueItems", "oneOf", "allOf", "not", "if", "then", "else"]
const strictModeProblems = (schema: any, path = "$"): Array<string> => {
  if (typeof schema !== "object" || schema === null) return []
  const problems: Array<string> = UNSUPPORTED.filter((k) => k in schema).map((k) => `${path}: ${k}`)
  if (schema.type === "object") {
    if (schema.additionalProperties !== false) problems.push(`${path}: additionalProperties is not false`)
    const keys = Object.keys(schema.properties ?? {})
    if (JSON.stringify([...(schema.required ?? [])].sort()) !== JSON.stringify([...keys].sort())) problems.push(`${path}: not every property is required`)
    for (const key of keys) problems.push(...strictModeProblems(schema.properties[key], `${path}.${key}`))
  }
  if (schema.items !== undefined) problems.push(...strictModeProblems(schema.items, `${path}[]`))
  for (const branch of schema.anyOf ?? []) problems.push(...strictModeProblems(branch, `${path}|`))
  return problems
}

describe("the answer schema", () => {
  it("sent as json_schema is JSONSchema.make of the decoding Schema (without the $schema meta key), strict", () => {
    const format = responseFormatOf("structured")
    expect(format).toMatchObject({ type: "json_schema", name: "policy_change_summary" })
    const { $schema, ...made } = JSONSchema.make(Answer) as any
    expect($schema).toMatch(/json-schema\.org/)
    expect(format.type === "json_schema" && format.schema).toEqual(made)
    expect(strictModeProblems(made)).toEqual([])
    // Topics and severities are exactly the lists.
    expect(made.properties.changes.items.properties.topic.enum).toHaveLength(15)
    expect(made.properties.changes.items.properties.severity.enum).toEqual(["low", "medium", "high", "critical"])
    expect(made.properties.changes.items.properties.quotes.minItems).toBe(1)
  })

  it("the strict-mode check finds what strict mode rejects", () => {
    expect(strictModeProblems(JSONSchema.make(Schema.Struct({ a: Schema.optional(Schema.String) })))).toEqual(["$: not every property is required"])
    expect(strictModeProblems(JSONSchema.make(Schema.Struct({ a: Schema.String.pipe(Schema.maxLength(3)) })))).toEqual(["$.a: maxLength"])
  })

  it("in json mode the prompt carries the same schema, and json_object is asked for", () => {
    expect(responseFormatOf("json")).toEqual({ type: "json_object" })
    const [system] = buildStructuredMessages({ changeText: "+ We sell data.", format: "json" })
    const lines = system!.content.split("\n")
    expect(JSON.parse(lines[lines.indexOf(SCHEMA_INTRO) + 1]!)).toEqual(answerJsonSchema())
    const [structuredSystem] = buildStructuredMessages({ changeText: "+ We sell data.", format: "structured" })
    expect(structuredSystem!.content).not.toContain(SCHEMA_INTRO)
  })

  it("the prompt states the severity rubric and asks for fewer items when the completion cap is small", () => {
    const [system] = buildStructuredMessages({ changeText: "+ x", format: "structured", maxItems: maxItemsFor(500) })
    expect(system!.content).toContain(SEVERITY_RULES)
    for (const [severity, meaning] of SEVERITY_RUBRIC) expect(system!.content).toContain(`- ${severity}: ${meaning}`)
    expect(system!.content).toContain("at most 4 items")
    expect(maxItemsFor(100)).toBe(1)
    expect(maxItemsFor(4000)).toBe(8)
  })
})

describe("parseAnswer", () => {
  it("reads an answer, also inside a Markdown code fence, ignoring extra fields", () => {
    const answer = { headline: "Acme shares data.", cosmetic: false, changes: [item("high")] }
    expect(parseAnswer(JSON.stringify(answer))).toEqual(Either.right(answer))
    expect(parseAnswer("```json\n" + JSON.stringify({ ...answer, extra: 1 }) + "\n```")).toEqual(Either.right(answer))
  })

  it("says shortly why text is not an answer", () => {
    const notJson = parseAnswer("Here is the summary: {")
    expect(Either.isLeft(notJson) && notJson.left).toMatch(/^not JSON/)
    const wrong = parseAnswer(JSON.stringify({ headline: "x", cosmetic: false, changes: [{ ...item("low"), severity: "severe" }] }))
    expect(Either.isLeft(wrong) && wrong.left).toMatch(/^does not match the schema: .*severity/s)
    const noQuote = parseAnswer(JSON.stringify({ headline: "x", cosmetic: false, changes: [{ ...item("low"), quotes: [] }] }))
    expect(Either.isLeft(noQuote)).toBe(true)
    const long = parseAnswer(JSON.stringify({ headline: "x".repeat(2000) }))
    expect(Either.isLeft(long) && long.left.length).toBeLessThanOrEqual(300)
  })
})

describe("toStructured", () => {
  it("the summary severity is the highest item's; cosmetic only when said and nothing is above low", () => {
    const answer = { headline: "Acme changes its terms.", cosmetic: false, changes: [item("medium"), item("critical"), item("low")] }
    expect(toStructured(answer, [true, true, false])).toMatchObject({ severity: "critical", cosmetic: false })
    expect(toStructured(answer, [true, true, false]).changes.map((c) => c.grounded)).toEqual([true, true, false])
    expect(toStructured({ ...answer, cosmetic: true, changes: [item("low")] }, [true])).toMatchObject({ severity: "none", cosmetic: true })
    expect(toStructured({ ...answer, cosmetic: true }, [true, true, true])).toMatchObject({ severity: "critical", cosmetic: false })
    expect(toStructured({ ...answer, changes: [] }, [])).toMatchObject({ severity: "none", cosmetic: true })
  })

  it("clips the headline to 140 characters at a word", () => {
    const clipped = clipHeadline(`Acme ${"shares your data ".repeat(20)}`)
    expect(clipped.length).toBeLessThanOrEqual(140)
    expect(clipped).toMatch(/data…$|shares…$|your…$/)
    expect(clipHeadline("  Acme   shares data. ")).toBe("Acme shares data.")
  })

  it("renders the text summary: the headline, then one bullet per item", () => {
    const structured = toStructured({ headline: "Acme shares data.", cosmetic: false, changes: [item("high")] }, [true])
    expect(renderStructured(structured)).toBe("Acme shares data.\n\n- Data is now shared. Partners see your data. (high: data-sharing)")
  })
})

describe("the OpenAPI example", () => {
  it("is a valid structured result whose quotes are grounded in the Google fixture it describes", () => {
    const examples = Option.getOrThrow(SchemaAST.getExamplesAnnotation(Structured.ast))
    const example = Schema.decodeUnknownSync(Structured)(examples[0])
    const change = Either.getOrThrow(fromUnifiedDiff(fixture("07-").patch))
    const report = makeGrounder(groundingBasis(change, condense(change))).check(example.changes)
    expect(report.grounded).toEqual(example.changes.map(() => true))
  })
})

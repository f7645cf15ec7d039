/**
 * Structured outputs for the OpenRouter emulator: given `response_format` `json_schema` (or
 * `json_object` with the schema written in the prompt), an answer that is valid JSON for that
 * schema, one item per changed section of the change in the prompt, each quoting that section's
 * added text (its removed text when it only removes). Deterministic, like the text answers.
 */

/** The line the summarizer's prompt puts before the schema in `json` mode; the schema is the next line. */
const SCHEMA_INTRO = "The JSON schema of the answer:"
const FENCE = /<<<POLICY_CHANGE id=([0-9a-f]+)>>>\n([\s\S]*?)\n<<<END_POLICY_CHANGE id=\1>>>/
const QUOTE_WORDS = 12

const textOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content.map((part) => (typeof part?.text === "string" ? part.text : "")).join("")
}

/** The schema the request asks the answer to follow, or null when it asks for text. */
export const requestedSchema = (body: any): Record<string, any> | null => {
  const format = body?.response_format
  if (format?.type === "json_schema" && typeof format.json_schema?.schema === "object") return format.json_schema.schema
  if (format?.type !== "json_object") return null
  for (const message of body.messages ?? []) {
    const lines = textOf(message?.content).split("\n")
    const at = lines.indexOf(SCHEMA_INTRO)
    if (at >= 0) {
      try {
        return JSON.parse(lines[at + 1] ?? "")
      } catch {
        return null
      }
    }
  }
  return null
}

export const wantsJsonSchema = (body: any): boolean => body?.response_format?.type === "json_schema"

export interface SectionFacts {
  readonly heading: string | null
  readonly kind: "added" | "removed" | "modified"
  readonly quote: string
}

const REMOVED_MARK = /\[-([\s\S]*?)-\]/g
const ADDED_MARK = /\{\+([\s\S]*?)\+\}/g
const CUT_NOTICE = /\s*\[… \d+ more characters\]$/
const LETTERS = /[\p{L}\p{N}]/gu

/** Up to QUOTE_WORDS words of the run with the most letters: what a careful model would quote. */
const quoteOf = (texts: ReadonlyArray<string>): string | null => {
  const runs = texts.flatMap((text) => text.split("…")).map((run) => run.trim()).filter((run) => run !== "")
  const letters = (run: string) => run.match(LETTERS)?.length ?? 0
  const best = runs.reduce<string | null>((top, run) => (top === null || letters(run) > letters(top) ? run : top), null)
  if (best === null || letters(best) === 0) return null
  return best.split(" ").slice(0, QUOTE_WORDS).join(" ")
}

/** The changed sections of the condensed change in the prompt, each with the quote the emulator gives it. */
export const sectionsOf = (messages: ReadonlyArray<any>): { readonly service: string | null; readonly sections: ReadonlyArray<SectionFacts> } => {
  const data = messages.map((m) => textOf(m?.content)).map((text) => FENCE.exec(text)?.[2]).find((text) => text !== undefined) ?? ""
  const service = /^Service: (.*)$/m.exec(data)?.[1] ?? null
  const sections: Array<SectionFacts> = []
  let heading: string | null = null
  let added: Array<string> = []
  let removed: Array<string> = []
  let edited = false
  const close = () => {
    const addedQuote = quoteOf(added)
    const removedQuote = quoteOf(removed)
    if (addedQuote !== null) sections.push({ heading, kind: edited ? "modified" : "added", quote: addedQuote })
    else if (removedQuote !== null) sections.push({ heading, kind: "removed", quote: removedQuote })
    added = []
    removed = []
    edited = false
  }
  for (const raw of data.split("\n")) {
    const line = raw.replace(CUT_NOTICE, "")
    // Sections are separated by a blank line and may have no heading line.
    if (line === "") {
      close()
      heading = null
      continue
    }
    if (line.startsWith("## ")) {
      close()
      heading = line.slice(3)
      continue
    }
    const body = line.slice(2).replace(/^… /, "")
    if (line.startsWith("+ ")) added.push(body)
    else if (line.startsWith("- ")) removed.push(body)
    else if (line.startsWith("~ ")) {
      edited = true
      // The new version of the paragraph: removed words dropped, added words unwrapped.
      const after = body.replace(REMOVED_MARK, "").replace(ADDED_MARK, "$1")
      if ([...body.matchAll(ADDED_MARK)].length > 0) added.push(after)
      else removed.push(body.replace(ADDED_MARK, "").replace(REMOVED_MARK, "$1"))
    }
  }
  close()
  return { service, sections }
}

const TOPIC_WORDS: ReadonlyArray<readonly [RegExp, string, string]> = [
  [/arbitration|class action|dispute/i, "dispute-resolution", "high"],
  [/artificial intelligence|\bAI\b|machine learning|train/i, "ai-training", "high"],
  [/sell|share|third[- ]part|partner/i, "data-sharing", "medium"],
  [/retain|retention|keep your|storage period/i, "data-retention", "medium"],
  [/cookie|advertis|track/i, "tracking-advertising", "medium"],
  [/collect/i, "data-collection", "medium"],
  [/child|minor/i, "children", "medium"],
  [/fee|price|payment|subscription|refund/i, "payments-fees", "medium"],
  [/terminat|suspend/i, "account-termination", "medium"],
  [/licen[cs]e/i, "content-licensing", "medium"],
  [/liab|warrant|indemn/i, "liability", "medium"],
  [/governing law|jurisdiction|courts? of/i, "jurisdiction", "medium"],
  [/security|encrypt|breach/i, "security", "medium"],
  [/right to|opt[- ]out|object to/i, "user-rights", "medium"]
]

const pick = (wanted: string, allowed: ReadonlyArray<unknown> | undefined): unknown =>
  allowed === undefined || allowed.includes(wanted) ? wanted : allowed[0]

interface Context {
  readonly headline: string
  readonly sections: ReadonlyArray<SectionFacts>
  readonly section?: SectionFacts
}

/** A value of `schema` for the property `name`, filled from what the change says. */
const instance = (schema: any, name: string, ctx: Context): unknown => {
  const section = ctx.section
  switch (schema?.type) {
    case "object":
      return Object.fromEntries(Object.entries<any>(schema.properties ?? {}).map(([key, value]) => [key, instance(value, key, ctx)]))
    case "array": {
      if (name === "changes") return ctx.sections.map((s) => instance(schema.items, "change", { ...ctx, section: s }))
      if (name === "quotes" && section !== undefined) return [section.quote]
      return Array.from({ length: schema.minItems ?? 0 }, () => instance(schema.items, name, ctx))
    }
    case "boolean":
      return false
    case "integer":
    case "number":
      return schema.minimum ?? 0
    case "string": {
      const topic = TOPIC_WORDS.find(([pattern]) => section !== undefined && pattern.test(section.quote))
      switch (name) {
        case "headline":
          return ctx.headline
        case "topic":
          return pick(topic?.[1] ?? "other", schema.enum)
        case "severity":
          return pick(topic?.[2] ?? "low", schema.enum)
        case "kind":
          return pick(section?.kind ?? "modified", schema.enum)
        case "what":
          return section?.heading == null ? `The document ${section?.kind ?? "changed"} text.` : `The section "${section.heading}" has ${section.kind} text.`
        case "impact":
          return "Read the quoted text to see whether it changes what you agreed to."
        default:
          return schema.enum?.[0] ?? ""
      }
    }
    default:
      return null
  }
}

/** Ways to spoil a structured answer, scripted as emulator faults. */
export type Spoil = "invalid_json" | "schema_break" | "invented_quote"

export const INVENTED_QUOTE = "We will sell your personal data to anyone who asks."

/** The JSON text of a structured answer to `body`, whose headline starts with `headline`. */
export const structuredAnswer = (body: any, schema: Record<string, any>, headline: string, spoil?: Spoil): string => {
  const { service, sections } = sectionsOf(body.messages ?? [])
  const title = `${headline} ${service ?? "The document"} changes ${sections.length} section${sections.length === 1 ? "" : "s"}.`
  const answer = instance(schema, "answer", { headline: title, sections }) as Record<string, any>
  switch (spoil) {
    case "invalid_json":
      return `Here is the summary you asked for: ${JSON.stringify(answer).slice(0, 40)}`
    case "schema_break":
      return JSON.stringify({ ...answer, changes: (answer.changes ?? []).map((c: any) => ({ ...c, severity: "severe" })), headline: 42 })
    case "invented_quote": {
      const [first, ...rest] = answer.changes ?? []
      const changes = first === undefined ? [{ ...instance(schema.properties?.changes?.items, "change", { headline: title, sections }) as object, quotes: [INVENTED_QUOTE] }] : [{ ...first, quotes: [INVENTED_QUOTE] }, ...rest]
      return JSON.stringify({ ...answer, changes })
    }
    default:
      return JSON.stringify(answer)
  }
}

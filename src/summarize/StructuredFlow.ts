import { Effect, Either } from "effect"
import type { ChatMessage, CompletionSuccess, ResponseFormat } from "../domain/Completion.js"
import type { LlmError } from "../domain/LlmError.js"
import type { GroundingBasis } from "./Grounding.js"
import { makeGrounder } from "./Grounding.js"
import type { PromptInput } from "./Prompt.js"
import { buildStructuredMessages, correctionMessages, cutFeedback, decodingFeedback, groundingFeedback, maxItemsFor, responseFormatOf } from "./Prompt.js"
import type { Answer, Grounding, Structured } from "./StructuredSummary.js"
import { highest, parseAnswer, renderStructured, toStructured } from "./StructuredSummary.js"

/** One upstream call as the summarizer makes it (limits, ledger and attempt count included). */
export type Call = (
  messages: ReadonlyArray<ChatMessage>,
  purpose: string,
  responseFormat?: ResponseFormat
) => Effect.Effect<CompletionSuccess, LlmError>

/** Ledger purposes of the calls besides the first one of each piece. */
export const PURPOSE = {
  decodingCorrection: "summary-correction",
  groundingCorrection: "summary-grounding-correction"
} as const

export interface StructuredRequest {
  readonly format: "structured" | "json"
  readonly model: string
  /** The completion cap: how many items to ask for follows from it. */
  readonly maxTokens: number
  readonly prompt: Omit<PromptInput, "changeText" | "part" | "nonce">
  /** The change's text the quotes are checked against. */
  readonly basis: GroundingBasis
  /** The change text to send: one piece, or the parts of a split change (each asked on its own, then merged). */
  readonly pieces: ReadonlyArray<string>
}

export interface StructuredOutcome {
  readonly calls: ReadonlyArray<CompletionSuccess>
  readonly summary: string
  readonly structured: Structured | null
  readonly grounding: Grounding | null
  readonly structuredError: string | null
}

/**
 * A server that cannot honour `json_schema`: a 400 naming the parameter, or OpenRouter's 404 when
 * `require_parameters` leaves no endpoint.
 */
export const refusesJsonSchema = (error: LlmError): boolean =>
  error._tag === "UpstreamRejected" &&
  ((error.status === 400 && /response_format|json_schema|structured output|schema/i.test(error.message)) ||
    (error.status === 404 && /requested parameters/i.test(error.message)))

interface Piece {
  readonly calls: ReadonlyArray<CompletionSuccess>
  /** The last answer's text, kept as the summary when no answer could be read. */
  readonly text: string
  readonly answer: Answer | null
  readonly error: string | null
}

/**
 * Structured summaries: ask with the schema, retry once in `json` mode when the server refuses the
 * schema, give an unreadable answer one corrective call with the decoding error, and an answer
 * with quotes not found in the change one corrective call naming them. Models that refused the
 * schema are asked in `json` mode from then on.
 */
export const makeStructuredFlow = () => {
  const refused = new Set<string>()

  const run = (call: Call, request: StructuredRequest): Effect.Effect<StructuredOutcome, LlmError> =>
    Effect.gen(function*() {
      const grounder = makeGrounder(request.basis)
      const split = request.pieces.length > 1

      const ask = (changeText: string, index: number): Effect.Effect<Piece, LlmError> =>
        Effect.gen(function*() {
          const calls: Array<CompletionSuccess> = []
          const purpose = split ? "summary-part" : "summary"
          const part = split ? { part: { index: index + 1, total: request.pieces.length } } : {}
          const messagesFor = (format: "structured" | "json") => buildStructuredMessages({ ...request.prompt, ...part, changeText, format, maxItems: maxItemsFor(request.maxTokens) })
          let format = refused.has(request.model) ? "json" as const : request.format
          let messages = messagesFor(format)
          const first = yield* call(messages, purpose, responseFormatOf(format)).pipe(
            Effect.catchIf((error) => format === "structured" && refusesJsonSchema(error), (error) =>
              Effect.gen(function*() {
                refused.add(request.model)
                yield* Effect.logWarning("The server refused json_schema; asking with the schema in the prompt").pipe(
                  Effect.annotateLogs({ model: request.model, detail: "message" in error ? error.message : "" })
                )
                format = "json"
                messages = messagesFor(format)
                return yield* call(messages, purpose, responseFormatOf(format))
              })))
          calls.push(first)
          const responseFormat = responseFormatOf(format)

          // A corrective call that fails upstream leaves the answer as it was.
          const correct = (answer: string, feedback: string, correctionPurpose: string) =>
            Effect.map(Effect.either(call(correctionMessages(messages, answer, feedback), correctionPurpose, responseFormat)), (result) => {
              if (Either.isRight(result)) calls.push(result.right)
              return Either.getRight(result)
            })

          let text = first.text
          let decoded = parseAnswer(text)
          if (Either.isLeft(decoded)) {
            const feedback = first.finishReason === "length" ? cutFeedback(decoded.left) : decodingFeedback(decoded.left)
            const corrected = yield* correct(text, feedback, PURPOSE.decodingCorrection)
            if (corrected._tag === "Some") {
              text = corrected.value.text
              const again = parseAnswer(text)
              decoded = Either.isLeft(again) ? Either.left(`${decoded.left}; after a correction: ${again.left}`) : again
            }
          }
          if (Either.isLeft(decoded)) return { calls, text, answer: null, error: decoded.left }

          let answer = decoded.right
          const missing = grounder.check(answer.changes).missing
          if (missing.length > 0) {
            const corrected = yield* correct(text, groundingFeedback(missing), PURPOSE.groundingCorrection)
            const again = corrected._tag === "Some" ? parseAnswer(corrected.value.text) : Either.left("no correction")
            // A correction replaces the answer only when it is readable and grounds at least as many items.
            const groundedItems = (a: Answer) => grounder.check(a.changes).grounded.filter(Boolean).length
            if (corrected._tag === "Some" && Either.isRight(again) && groundedItems(again.right) >= groundedItems(answer)) {
              text = corrected.value.text
              answer = again.right
            }
          }
          return { calls, text, answer, error: null }
        })

      // One piece (nearly every change) is asked on this fiber: forking costs more than the call's own work.
      const pieces = request.pieces.length === 1
        ? [yield* ask(request.pieces[0]!, 0)]
        : yield* Effect.forEach(request.pieces, ask, { concurrency: 2 })
      const calls = pieces.flatMap((piece) => piece.calls)
      const answered = pieces.filter((piece): piece is Piece & { readonly answer: Answer } => piece.answer !== null)
      const errors = pieces.flatMap((piece, i) => (piece.error === null ? [] : [split ? `part ${i + 1} of ${pieces.length}: ${piece.error}` : piece.error]))
      const structuredError = errors.length === 0 ? null : errors.join("; ")
      if (answered.length === 0) {
        return { calls, summary: pieces.map((piece) => piece.text).join("\n\n"), structured: null, grounding: null, structuredError }
      }
      // The parts' items are put together as they are; the headline is that of the most serious part.
      const headlineOf = answered.reduce((best, piece) => {
        const severity = (p: typeof piece) => highest(p.answer.changes.map((c) => c.severity))
        return highest([severity(best), severity(piece)]) === severity(best) ? best : piece
      })
      const merged: Answer = {
        headline: headlineOf.answer.headline,
        cosmetic: answered.every((piece) => piece.answer.cosmetic),
        changes: answered.flatMap((piece) => piece.answer.changes)
      }
      const report = grounder.check(merged.changes)
      const structured = toStructured(merged, report.grounded)
      return { calls, summary: renderStructured(structured), structured, grounding: report.counts, structuredError }
    })

  return { run }
}

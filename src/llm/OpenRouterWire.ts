import { Schema as S } from "effect"

/*
 * OpenRouter's bodies as `Schema`s (see shared/openrouter-wire.md), decoded once where they arrive.
 * Only the fields this service reads are declared. OpenAI-compatible servers vary, so a field of
 * another type reads as absent rather than voiding the whole body: the classifier then decides
 * what a missing field means.
 */

const dropped = S.transform(S.Unknown, S.Undefined, { strict: true, decode: () => undefined, encode: () => undefined })

/** A field that is absent when missing, null or of another type. */
const field = <A, I>(schema: S.Schema<A, I>) => S.optional(S.Union(schema, dropped))

/** Error codes come as numbers (the HTTP status) or as words. */
const Code = S.Union(S.String, S.transform(S.Number, S.String, { strict: true, decode: String, encode: Number }))

/** `error.metadata`: kept whole for the logs, read for the provider and the rate-limit copy of the headers. */
export const ErrorMetadata = S.Struct({
  provider_name: field(S.String),
  headers: field(S.Record({ key: S.String, value: S.Unknown }))
})

/** `{"error":{"code","message","metadata"}}`, in an error response or inside a 200. */
export const ErrorObject = S.Struct({
  code: field(Code),
  message: field(S.String),
  metadata: S.optional(S.Unknown)
})
export type ErrorObject = typeof ErrorObject.Type

export const ErrorBody = S.Struct({ error: field(ErrorObject) })

export const Usage = S.Struct({
  prompt_tokens: field(S.Number),
  completion_tokens: field(S.Number),
  total_tokens: field(S.Number),
  cost: field(S.Number),
  is_byok: field(S.Boolean),
  prompt_tokens_details: field(S.Struct({ cached_tokens: field(S.Number) })),
  cost_details: field(S.Struct({ upstream_inference_cost: field(S.Number) }))
})
export type Usage = typeof Usage.Type

export const Choice = S.Struct({
  finish_reason: field(S.String),
  message: field(S.Struct({ content: field(S.String) })),
  error: field(ErrorObject)
})

const emptyChoice = S.transform(S.Unknown, S.typeSchema(Choice), { strict: true, decode: () => ({}), encode: () => ({}) })

export const ChatResponse = S.Struct({
  id: field(S.String),
  model: field(S.String),
  provider: field(S.String),
  error: field(ErrorObject),
  // A choice that is not an object is an empty one: only the first is read.
  choices: field(S.Array(S.Union(Choice, emptyChoice))),
  usage: field(Usage)
})
export type ChatResponse = typeof ChatResponse.Type

/** `GET {base}/key`; a null limit means none. */
export const KeyAnswer = S.Struct({
  data: field(S.Struct({
    label: field(S.String),
    limit: field(S.Number),
    limit_remaining: field(S.Number),
    is_free_tier: field(S.Boolean),
    rate_limit: field(S.Struct({ requests: field(S.Number), interval: field(S.String) }))
  }))
})

/** `GET {base}/generation?id=`: the billed record of one generation. */
export const Generation = S.Struct({
  data: field(S.Struct({
    total_cost: field(S.Number),
    tokens_prompt: field(S.Number),
    tokens_completion: field(S.Number)
  }))
})

/**
 * Decodes a body that may be anything (a string, an array, null): every field is optional and
 * lenient, so any object decodes and anything else reads as an empty object.
 */
export const decodeLoose = <A, I>(schema: S.Schema<A, I>): (body: unknown) => A => {
  const decode = S.decodeUnknownSync(schema)
  return (body) => decode(typeof body === "object" && body !== null && !Array.isArray(body) ? body : {})
}

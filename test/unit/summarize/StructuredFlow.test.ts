import { describe, expect, it } from "@effect/vitest"
import { UpstreamRejected, UpstreamServerError } from "../../../src/domain/LlmError.js"
import { overheadTokens } from "../../../src/summarize/Prompt.js"
import { refusesJsonSchema } from "../../../src/summarize/StructuredFlow.js"

describe("refusesJsonSchema", () => {
  it("recognizes a server refusing json_schema: a 400 naming it, or OpenRouter's 404 when require_parameters leaves no endpoint", () => {
    expect(refusesJsonSchema(new UpstreamRejected({ status: 400, message: "response_format of type json_schema is not supported" }))).toBe(true)
    expect(refusesJsonSchema(new UpstreamRejected({ status: 400, message: "Invalid parameter: 'response_format' must be one of text, json_object" }))).toBe(true)
    expect(refusesJsonSchema(new UpstreamRejected({ status: 404, message: "No endpoints found that can handle the requested parameters." }))).toBe(true)
  })

  it("leaves other failures to the fallback", () => {
    expect(refusesJsonSchema(new UpstreamRejected({ status: 400, message: "Invalid request" }))).toBe(false)
    expect(refusesJsonSchema(new UpstreamRejected({ status: 404, message: "No endpoints found for openai/gpt-9." }))).toBe(false)
    expect(refusesJsonSchema(new UpstreamRejected({ status: 401, message: "User not found." }))).toBe(false)
    expect(refusesJsonSchema(new UpstreamServerError({ status: 500, message: "json_schema exploded" }))).toBe(false)
  })
})

describe("the input budget of structured prompts", () => {
  it("takes off more overhead than the text prompt: the rules and rubric, and the schema (in the body or in the prompt)", () => {
    const text = overheadTokens({ format: "text" })
    const structured = overheadTokens({ format: "structured" })
    const json = overheadTokens({ format: "json" })
    expect(overheadTokens()).toBe(text)
    expect(structured).toBeGreaterThan(text + 300)
    expect(json).toBeGreaterThan(text + 300)
  })
})

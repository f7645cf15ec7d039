import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { buildStructuredMessages, responseFormatOf } from "../../src/summarize/Prompt.js"
import { parseAnswer } from "../../src/summarize/StructuredSummary.js"
import { INVENTED_QUOTE } from "../support/emulatorStructured.js"
import { type Emulator, expectedUsage, startEmulator } from "../support/OpenRouterEmulator.js"

const KEY = "sk-or-v1-test"
const change = [
  "## Sharing",
  "+ We may share your contact details with advertising partners.",
  "",
  "## Retention",
  "~ We keep logs for [-30-]{+90+} days.",
  "",
  "## Contact",
  "- Write to our office in Dublin."
].join("\n")

const schemaFormat = () => {
  const format = responseFormatOf("structured")
  return format.type === "json_schema" ? { type: "json_schema", json_schema: { name: format.name, strict: true, schema: format.schema } } : format
}
const body = (format: "structured" | "json") => ({
  model: "openai/gpt-4o-mini",
  messages: buildStructuredMessages({ changeText: change, format, document: { service: "Acme" } }),
  response_format: format === "structured" ? schemaFormat() : { type: "json_object" }
})

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator()
})
afterAll(() => emulator.close())
beforeEach(() => emulator.reset())

const post = async (payload: unknown) => {
  const response = await fetch(`${emulator.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(payload)
  })
  const json: any = await response.json()
  return { status: response.status, json, content: json.choices?.[0]?.message?.content as string | undefined }
}

describe("OpenRouterEmulator structured outputs", () => {
  it("answers json_schema with JSON for the schema: one item per changed section, quoting its changed text", async () => {
    const { content, json, status } = await post(body("structured"))
    expect(status).toBe(200)
    const answer = Either.getOrThrow(parseAnswer(content!))
    expect(answer.headline).toMatch(/^Summary: [0-9a-f]{8}\. Acme changes 3 sections\.$/)
    expect(answer.changes.map((c) => [c.kind, c.quotes])).toEqual([
      ["added", ["We may share your contact details with advertising partners."]],
      ["modified", ["We keep logs for 90 days."]],
      ["removed", ["Write to our office in Dublin."]]
    ])
    expect(answer.changes[0]!.topic).toBe("data-sharing")
    // Usage is predictable from the request, as for text answers.
    expect(json.usage.completion_tokens).toBe(expectedUsage(body("structured")).completion_tokens)
  })

  it("answers json_object from the schema written in the prompt", async () => {
    const { content } = await post(body("json"))
    expect(Either.getOrThrow(parseAnswer(content!)).changes).toHaveLength(3)
  })

  it("answers text when no response_format is asked for", async () => {
    const { content } = await post({ ...body("structured"), response_format: undefined })
    expect(content).toMatch(/^Summary: [0-9a-f]{8}\. /)
  })

  it("can be scripted to answer invalid JSON, JSON breaking the schema, or an invented quote", async () => {
    emulator.script({ kind: "invalid_json" }, { kind: "schema_break" }, { kind: "invented_quote" })
    const invalid = parseAnswer((await post(body("structured"))).content!)
    expect(Either.isLeft(invalid) && invalid.left).toMatch(/^not JSON/)
    const broken = parseAnswer((await post(body("structured"))).content!)
    expect(Either.isLeft(broken) && broken.left).toMatch(/^does not match the schema/)
    const invented = Either.getOrThrow(parseAnswer((await post(body("structured"))).content!))
    expect(invented.changes[0]!.quotes).toEqual([INVENTED_QUOTE])
    expect(emulator.injectedFaults()).toBe(3)
  })

  it("refuses json_schema with a 400 when scripted to, as a server without structured outputs; json_object still works", async () => {
    emulator.always({ kind: "refuse_json_schema" })
    const refused = await post(body("structured"))
    expect(refused.status).toBe(400)
    expect(refused.json.error.message).toMatch(/json_schema is not supported/)
    const json = await post(body("json"))
    expect(json.status).toBe(200)
    expect(emulator.calls.map((call) => call.status)).toEqual([400, 200])
  })
})

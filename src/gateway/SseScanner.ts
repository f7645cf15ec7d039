import type { ProviderUsage } from "../llm/CompletionProvider.js"
import { parseUsage } from "../llm/OpenRouter.js"

/** What the ledger needs from a stream, gathered as its chunks pass by. */
export interface StreamFacts {
  id: string | null
  model: string | null
  provider: string | null
  usage: ProviderUsage | undefined
  finishReason: string | null
  /** A top-level `error` on a chunk, or a choice that finished with `error`. */
  error: { readonly code: string; readonly message: string } | null
  done: boolean
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

/**
 * Reads OpenRouter's SSE as it passes through without holding it: only the first data line (id,
 * model, provider) and the lines that can carry a finish reason, an error or usage are decoded.
 */
export const makeSseScanner = () => {
  const decoder = new TextDecoder()
  const facts: StreamFacts = { id: null, model: null, provider: null, usage: undefined, finishReason: null, error: null, done: false }
  let partial = ""

  const line = (text: string) => {
    if (!text.startsWith("data:")) return
    const data = text.slice(5).trim()
    if (data === "[DONE]") {
      facts.done = true
      return
    }
    const interesting = facts.id === null || data.includes('"usage"') || data.includes('"error"') || data.includes('"finish_reason":"')
    if (!interesting) return
    let chunk: Record<string, unknown>
    try {
      chunk = record(JSON.parse(data))
    } catch {
      return
    }
    if (facts.id === null && typeof chunk["id"] === "string") facts.id = chunk["id"]
    if (facts.model === null && typeof chunk["model"] === "string") facts.model = chunk["model"]
    if (facts.provider === null && typeof chunk["provider"] === "string") facts.provider = chunk["provider"]
    const usage = parseUsage(chunk["usage"])
    if (usage !== undefined) facts.usage = usage
    const choice = record(Array.isArray(chunk["choices"]) ? chunk["choices"][0] : undefined)
    if (typeof choice["finish_reason"] === "string") facts.finishReason = choice["finish_reason"]
    const error = chunk["error"] !== undefined ? record(chunk["error"]) : facts.finishReason === "error" ? record(choice["error"]) : undefined
    if (error !== undefined && facts.error === null) {
      facts.error = { code: String(error["code"] ?? "finish_error"), message: String(error["message"] ?? "The model stopped with an error") }
    }
  }

  return {
    facts,
    push: (bytes: Uint8Array) => {
      const lines = (partial + decoder.decode(bytes, { stream: true })).split("\n")
      partial = lines.pop()!
      for (const l of lines) line(l)
    }
  }
}

import { Either } from "effect"
import type { AppConfig } from "../Config.js"
import type { ProviderRequest } from "../llm/CompletionProvider.js"

/** A request the gateway refuses before any upstream call (400 in OpenAI's error shape). */
export interface InvalidChatRequest {
  readonly param: string
  readonly message: string
}

export interface ChatRequest {
  /** The body to send upstream: the caller's, with the limits and usage options filled in. */
  readonly body: string
  readonly stream: boolean
  /** What the hard caps reserve for and failed attempts' rows name. */
  readonly request: ProviderRequest
}

const record = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined

const invalid = (param: string, message: string) => Either.left<InvalidChatRequest>({ param, message })

/** Every character of a message or tool definition counts towards the prompt estimate, text or not. */
const promptText = (value: unknown): string => (typeof value === "string" ? value : value === undefined ? "" : JSON.stringify(value))

/**
 * Checks an OpenAI Chat Completions body against the operator's limits and prepares it for
 * OpenRouter. Fields the gateway does not know are passed through as they are. A missing
 * completion cap becomes `OPENROUTER_MAX_TOKENS`, so every call has a worst case the hard caps can
 * reserve; a stream asks for usage on its last chunk, so its cost is exact.
 */
export const parseChatRequest = (raw: unknown, config: AppConfig): Either.Either<ChatRequest, InvalidChatRequest> => {
  const { openrouter } = config
  const body = record(raw)
  if (body === undefined) return invalid("body", "The body must be a JSON object (an OpenAI Chat Completions request)")
  const messages = body["messages"]
  if (!Array.isArray(messages) || messages.length === 0) return invalid("messages", "`messages` must be a non-empty array")
  const model = body["model"]
  if (typeof model !== "string") return invalid("model", "`model` is required")
  const allowed = openrouter.allowedModels
  const outside = (m: unknown) => typeof m !== "string" || !allowed.includes(m)
  if (outside(model)) return invalid("model", `\`model\` must be one of: ${allowed.join(", ")} (OPENROUTER_ALLOWED_MODELS)`)
  const fallbacks = body["models"]
  if (fallbacks !== undefined && (!Array.isArray(fallbacks) || fallbacks.some(outside))) {
    return invalid("models", `every one of \`models\` must be one of: ${allowed.join(", ")} (OPENROUTER_ALLOWED_MODELS)`)
  }
  const temperature = body["temperature"]
  if (temperature !== undefined && temperature !== null && !(typeof temperature === "number" && temperature >= 0 && temperature <= 2)) {
    return invalid("temperature", "`temperature` must be between 0 and 2")
  }
  const caps = (["max_tokens", "max_completion_tokens"] as const).filter((k) => body[k] !== undefined && body[k] !== null)
  for (const key of caps) {
    const value = body[key]
    if (!(typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= openrouter.maxTokens)) {
      return invalid(key, `\`${key}\` must be a whole number from 1 to ${openrouter.maxTokens} (OPENROUTER_MAX_TOKENS)`)
    }
  }
  const stream = body["stream"] === true
  const maxTokens = caps.length === 0 ? openrouter.maxTokens : Math.max(...caps.map((k) => body[k] as number))
  const out: Record<string, unknown> = { ...body }
  if (caps.length === 0) out["max_tokens"] = maxTokens
  if (stream) out["stream_options"] = { ...record(body["stream_options"]), include_usage: true }
  const estimated = [...messages.map((m) => promptText(record(m)?.["content"] ?? m)), promptText(body["tools"]), promptText(body["response_format"])]
  return Either.right({
    body: JSON.stringify(out),
    stream,
    request: {
      messages: estimated.filter((t) => t !== "").map((content) => ({ role: "user" as const, content })),
      model,
      fallbackModels: Array.isArray(fallbacks) ? (fallbacks as ReadonlyArray<string>).filter((m) => m !== model) : [],
      temperature: typeof temperature === "number" ? temperature : openrouter.temperature,
      maxTokens
    }
  })
}

import type { ProviderRequest } from "../../src/llm/CompletionProvider.js"

/** One small completion request, every default applied, for tests that drive a provider directly. */
export const providerRequest: ProviderRequest = {
  messages: [{ role: "user", content: "Summarize: we keep your data 90 days." }],
  model: "openai/gpt-4o-mini",
  fallbackModels: [],
  temperature: 0.7,
  maxTokens: 100
}

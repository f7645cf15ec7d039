/**
 * What the OpenAPI document shows a reader beyond the schemas: an example request and answer for
 * every operation, the fallback reasons, and the answers made by the middlewares in front of the
 * routes (413, 415, 405), which the endpoint definitions cannot declare.
 */
type Json = Record<string, any>

const rawDiff = "--- a/policy.md\n+++ b/policy.md\n@@ -1,2 +1,2 @@\n # Data retention\n-We keep your data 30 days.\n+We keep your data 90 days and share it with partners.\n"

const error = (_tag: string, message: string, extra: Json = {}) => ({ _tag, ...extra, message })

export const fallbackReasons: Readonly<Record<string, string>> = {
  ai_disabled: "AI_ENABLED is false: no model is called.",
  no_api_key: "No OPENROUTER_API_KEY is set: no model is called.",
  budget_exceeded: "A hard cap (COST_HARD_LIMIT_DAILY_USD / COST_HARD_LIMIT_MONTHLY_USD) has no room for this call's worst case.",
  rate_limited: "The provider's 429 persisted through the retries, or its quota resets too far away to wait for.",
  upstream_unavailable: "Timeouts, network errors, 408 or 5xx persisted through the retries.",
  upstream_rejected: "The provider refused the request permanently (400, 401 bad key, 402 no credits, 403 moderation, 404 unknown model); not retried.",
  invalid_response: "The answer stayed unusable (an error inside a 200, no choices, unparseable, empty).",
  circuit_open: "Recent calls kept failing, so calls are paused for LLM_CIRCUIT_COOLDOWN_MS before one probe."
}

const summarized = {
  status: "summarized",
  summary: "The service now keeps your data for 90 days and shares it with partners.\n\n- Data is kept 90 days instead of 30. Your data stays three times longer. (high: data-retention)",
  structured: {
    headline: "The service now keeps your data for 90 days and shares it with partners.",
    severity: "high",
    cosmetic: false,
    changes: [{
      topic: "data-retention",
      kind: "modified",
      what: "Data is kept 90 days instead of 30.",
      impact: "Your data stays three times longer.",
      severity: "high",
      quotes: ["We keep your data 90 days and share it with partners."],
      grounded: true
    }]
  },
  grounding: { quotes: 1, grounded: 1, sections: 1, covered: 1 },
  structuredError: null,
  rawDiff,
  fallbackReason: null,
  fallbackDetail: null,
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  requestId: "gen-1733140000-abcdef",
  usage: { promptTokens: 612, completionTokens: 88, totalTokens: 700, costUsd: "0.0001446" },
  cached: false,
  attempts: 1,
  latencyMs: 1840
}

const ready = {
  status: "ok",
  ai: "ready",
  reason: "ok",
  database: { ok: true, detail: "reachable" },
  upstream: { ok: true, detail: "key accepted" },
  aiEnabled: true,
  circuit: "closed",
  budget: {
    ok: true,
    detail: "room for one more worst-case call under every hard limit",
    caps: [{
      budget: "monthly",
      period: "2026-12",
      limitUsd: "50",
      spentUsd: "12.3401",
      reservedUsd: "0.0024",
      remainingUsd: "37.6575",
      worstCaseCallUsd: "0.0021",
      roomForOneMoreCall: true,
      refusals: 0,
      lastRefusedUsd: null
    }]
  },
  spoolDepth: 0,
  rateLimiter: { mode: "local", queueDepth: 0, inFlight: 1, pausedUntil: null }
}

const job = {
  jobId: "5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21",
  status: "running",
  counts: { queued: 1, running: 0, summarized: 1, fallback: 0, cancelled: 0 },
  usage: { promptTokens: 612, completionTokens: 88, totalTokens: 700, costUsd: "0.0001446" },
  createdAt: "2026-12-02T10:15:00.000Z",
  finishedAt: null,
  callback: { url: "https://hooks.example.com/policy-summaries", state: "pending", attempts: 0, lastError: null }
}

const totals = { calls: 3, failedCalls: 1, unknownCostCalls: 0, promptTokens: 1836, completionTokens: 264, totalTokens: 2100, costUsd: "0.0004338" }

/** Per operation id: the example request body (if any) and an example answer per status. */
const examples: Readonly<Record<string, { readonly request?: Json; readonly responses: Readonly<Record<string, unknown>> }>> = {
  "summaries.summarize": {
    request: {
      before: "We keep your data 30 days.",
      after: "We keep your data 90 days and share it with partners.",
      document: { title: "Privacy Policy", url: "https://example.com/privacy", service: "Example" }
    },
    responses: {
      "200": summarized,
      "400": error("BadRequest", "Give either `diff` (a unified diff) or `before` and `after`", { field: "diff" }),
      "401": error("Unauthorized", "Missing or wrong bearer token"),
      "413": error("PayloadTooLarge", "The request body is 3000000 bytes; the limit is 2097152 bytes (MAX_INPUT_BYTES)"),
      "415": error("UnsupportedMediaType", "The request body must be JSON (Content-Type: application/json)"),
      "429": error("TooManyRequests", "The upstream queue is full (1000 waiting); retry later", { retryAfterSeconds: 5 })
    }
  },
  "usage.totals": {
    responses: {
      "200": {
        from: "2026-12-01",
        to: "2026-12-02",
        groupBy: "day",
        groups: [{ key: "2026-12-01", ...totals }, { key: "2026-12-02", ...totals }],
        total: { calls: 6, failedCalls: 2, unknownCostCalls: 0, promptTokens: 3672, completionTokens: 528, totalTokens: 4200, costUsd: "0.0008676" },
        budgets: [{ budget: "monthly", kind: "hard", limitUsd: "50", spentUsd: "12.3401", reservedUsd: "0", levelsAlerted: [] }]
      },
      "400": error("BadRequest", "from must be a date as YYYY-MM-DD, got \"yesterday\"", { field: "from" }),
      "401": error("Unauthorized", "Missing or wrong bearer token"),
      "503": error("ServiceUnavailable", "The usage ledger is unreachable; try again shortly")
    }
  },
  "usage.calls": {
    responses: {
      "200": {
        calls: [{
          id: "0b7f5c1e-8f5a-4d6b-9a43-3f1f0f5e2c11",
          createdAt: "2026-12-02T10:15:02.113Z",
          model: "openai/gpt-4o-mini",
          provider: "OpenAI",
          status: "success",
          errorCode: null,
          attempt: 1,
          latencyMs: 1840,
          promptTokens: 612,
          completionTokens: 88,
          totalTokens: 700,
          costUsd: "0.0001446",
          costSource: "provider",
          requestId: "gen-1733140000-abcdef",
          purpose: "summary"
        }],
        nextCursor: "MTczMzEzNDEwMjExMzAwMHwwYjdmNWMxZS04ZjVhLTRkNmItOWE0My0zZjFmMGY1ZTJjMTE"
      },
      "400": error("BadRequest", "before must be a nextCursor returned by this endpoint", { field: "before" }),
      "401": error("Unauthorized", "Missing or wrong bearer token"),
      "503": error("ServiceUnavailable", "The usage ledger is unreachable; try again shortly")
    }
  },
  "gateway.chatCompletions": {
    request: {
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "Which dates does this policy set?" }],
      max_tokens: 200
    },
    responses: {
      "200": {
        id: "gen-1733140000-abcdef",
        object: "chat.completion",
        created: 1733140000,
        model: "openai/gpt-4o-mini",
        provider: "OpenAI",
        choices: [{ index: 0, message: { role: "assistant", content: "It takes effect on 1 January 2027." }, finish_reason: "stop" }],
        usage: { prompt_tokens: 18, completion_tokens: 11, total_tokens: 29, cost: 0.0000093 }
      },
      "400": { error: { message: "model anthropic/claude-3-opus is not in OPENROUTER_ALLOWED_MODELS", type: "invalid_request_error", param: "model", code: "invalid_request" } }
    }
  },
  "gateway.models": {
    responses: {
      "200": { object: "list", data: [{ id: "openai/gpt-4o-mini", object: "model", created: 0, owned_by: "openai" }] }
    }
  },
  "health.health": { responses: { "200": { status: "ok" } } },
  "health.ready": {
    responses: {
      "200": ready,
      "503": { _tag: "NotReady", readiness: { status: "not_ok", ai: "not_ready", reason: "database_unreachable" } }
    }
  },
  "health.metrics": {
    responses: {
      "200": "# HELP llm_cost_usd_total Cost reported or priced, USD, by model; approximate ...\n# TYPE llm_cost_usd_total counter\nllm_cost_usd_total{model=\"openai/gpt-4o-mini\"} 0.0001446\n"
    }
  },
  "jobs.submit": {
    request: {
      items: [
        { id: "privacy-2026-12", before: "We keep your data 30 days.", after: "We keep your data 90 days and share it with partners." },
        { id: "terms-2026-12", diff: rawDiff, document: { title: "Terms of Service", service: "Example" } }
      ],
      callbackUrl: "https://hooks.example.com/policy-summaries"
    },
    responses: {
      "202": { jobId: "5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21", status: "queued", items: 2, createdAt: "2026-12-02T10:15:00.000Z" },
      "200": { jobId: "5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21", status: "running", items: 2, createdAt: "2026-12-02T10:15:00.000Z" },
      "400": error("BadRequest", "Item 1 (id \"terms-2026-12\"): `after` is required with `before`", { field: "items[1].after" }),
      "401": error("Unauthorized", "Missing or wrong bearer token"),
      "409": error("IdempotencyConflict", "Idempotency-Key was used for job 5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21 with another body")
    }
  },
  "jobs.get": {
    responses: {
      "200": job,
      "404": error("JobNotFound", "No summary job 5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21 (finished jobs are deleted after JOB_RETENTION_DAYS)")
    }
  },
  "jobs.items": {
    responses: {
      "200": {
        items: [
          { itemId: "0b7f5c1e-8f5a-4d6b-9a43-3f1f0f5e2c11", id: "privacy-2026-12", status: "summarized", result: summarized },
          { itemId: "7c2d9e44-1b6a-4f0e-8d2c-5e9a1f3b6d80", id: "terms-2026-12", status: "queued", result: null }
        ],
        next: null
      },
      "404": error("JobNotFound", "No summary job 5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21 (finished jobs are deleted after JOB_RETENTION_DAYS)")
    }
  },
  "jobs.cancel": {
    responses: {
      "200": { ...job, status: "cancelled", counts: { queued: 0, running: 0, summarized: 1, fallback: 0, cancelled: 1 }, finishedAt: "2026-12-02T10:15:04.000Z", callback: { ...job.callback, state: "pending" } },
      "404": error("JobNotFound", "No summary job 5d0f8a52-4c3e-4d7e-9d59-2a1c3f0b7e21 (finished jobs are deleted after JOB_RETENTION_DAYS)")
    }
  },
  "index.index": {
    responses: {
      "200": {
        service: "policy-summarizer",
        version: "0.1.0",
        docs: "/docs",
        openapi: "/openapi.json",
        endpoints: ["POST /v1/summaries", "GET /v1/usage", "GET /v1/usage/calls", "GET /health", "GET /health/ready", "GET /metrics"]
      }
    }
  }
}

const jsonError = (description: string, example: Json) => ({
  description,
  content: {
    "application/json": {
      schema: {
        type: "object",
        required: ["_tag", "message"],
        properties: { _tag: { type: "string" }, message: { type: "string" } }
      },
      example
    }
  }
})

/** Answers made in front of the routes, documented on the operations that take a body. */
const middlewareAnswers: Json = {
  "413": jsonError(
    "The body is over MAX_INPUT_BYTES (answered before it is read when Content-Length says so)",
    error("PayloadTooLarge", "The request body is 3000000 bytes; the limit is 2097152 bytes (MAX_INPUT_BYTES)")
  ),
  "415": jsonError(
    "The body is not JSON (Content-Type must be application/json)",
    error("UnsupportedMediaType", "The request body must be JSON (Content-Type: application/json)")
  )
}

const fallbackTable = Object.entries(fallbackReasons).map(([reason, what]) => `- \`${reason}\`: ${what}`).join("\n")

const setExample = (content: Json | undefined, example: unknown) => {
  for (const media of Object.values(content ?? {})) (media as Json).example = example
}

/** Adds the examples and the middlewares' answers to a generated document. */
export const withExamples = (spec: Json): Json => {
  for (const [path, item] of Object.entries(spec.paths ?? {})) {
    for (const operation of Object.values(item as Json) as Array<Json>) {
      const id = operation.operationId as string
      if (operation.requestBody !== undefined) {
        operation.responses = { ...operation.responses, ...structuredClone(middlewareAnswers) }
      }
      if (path === "/v1/summaries") {
        operation.description = `${operation.description ?? ""}\n\nFallback reasons (\`fallbackReason\`):\n${fallbackTable}`
      }
      const example = examples[id]
      if (example === undefined) continue
      if (example.request !== undefined) setExample(operation.requestBody?.content, example.request)
      for (const [code, body] of Object.entries(example.responses)) setExample(operation.responses?.[code]?.content, body)
    }
  }
  return spec
}

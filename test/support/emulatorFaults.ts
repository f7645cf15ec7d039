/**
 * Faults the OpenRouter emulator can inject, and the error replies OpenRouter sends for them
 * (shapes from /work/shared/openrouter-wire.md).
 */

export type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 408 | 500 | 502 | 503 | 504

export type Fault =
  | {
      readonly kind: "status"
      readonly status: ErrorStatus
      readonly message?: string
      readonly metadata?: Readonly<Record<string, unknown>>
      /** The message quotes the request's `Authorization` header back, as some proxies do. */
      readonly echoAuthorization?: boolean
    }
  | {
      readonly kind: "rate_limited"
      readonly retryAfterSeconds?: number
      /** Milliseconds from now until X-RateLimit-Reset; default 1000. */
      readonly resetInMs?: number
      readonly limit?: number
    }
  /** The daily quota of `:free` models: resets at the next UTC midnight, so not worth retrying now. */
  | { readonly kind: "daily_quota" }
  /** HTTP 200 whose body is an error object without choices. */
  | { readonly kind: "error_in_200" }
  | { readonly kind: "no_choices" }
  | { readonly kind: "finish_error" }
  | { readonly kind: "empty_content"; readonly finishReason?: "stop" | "content_filter" }
  | { readonly kind: "length" }
  | { readonly kind: "malformed_json" }
  /** Content-Length promises the whole body, half is sent, then the socket is destroyed. */
  | { readonly kind: "cut_body" }
  | { readonly kind: "delay"; readonly ms: number; readonly then?: Fault }
  /** The socket is destroyed before any response byte. */
  | { readonly kind: "drop" }
  /** A success whose usage lacks `cost` and `cost_details`, as some providers send. */
  | { readonly kind: "no_cost" }
  | { readonly kind: "unknown_model" }
  /** A structured answer that is not JSON. */
  | { readonly kind: "invalid_json" }
  /** A structured answer that is JSON but breaks the schema (a wrong enum value, a headline that is a number). */
  | { readonly kind: "schema_break" }
  /** A structured answer whose first item quotes text the change does not contain. */
  | { readonly kind: "invented_quote" }
  /** A 400 for a request with `response_format` `json_schema`, as a server without structured outputs answers; other requests are answered. */
  | { readonly kind: "refuse_json_schema" }
  /** A 200 whose `content` is this many bytes, streamed without Content-Length and never held whole. */
  | { readonly kind: "huge_content"; readonly bytes: number }

export type FaultKind = Fault["kind"]

/** Faults answered before any completion is generated: no body, or an HTTP error. */
export type TransportFault = Extract<
  Fault,
  { readonly kind: "delay" | "drop" | "status" | "rate_limited" | "daily_quota" | "unknown_model" }
>

/** Faults that shape a 200 body. */
export type BodyFault = Exclude<Fault, TransportFault>

/** Faults that make sense on the `/models` and `/key` endpoints. */
export type EndpointFault = Extract<
  Fault,
  { readonly kind: "delay" | "drop" | "status" | "rate_limited" | "daily_quota" | "malformed_json" | "cut_body" }
>

export interface FaultContext {
  readonly model: string
  readonly provider: string
  /** Last user message, quoted back by moderation errors. */
  readonly userText: string
  /** The request's `Authorization` header, for `echoAuthorization`. */
  readonly authorization?: string
}

export interface ErrorReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

const USER_ID = "user_2yEmuLat0rQpRw8sXvT4bN"

export const errorBody = (code: number, message: string, metadata?: Readonly<Record<string, unknown>>): string =>
  JSON.stringify({
    error: metadata === undefined ? { code, message } : { code, message, metadata },
    user_id: USER_ID
  })

/** Unauthenticated requests have no user, so their error carries no `user_id`. */
export const anonymousErrorBody = (code: number, message: string): string =>
  JSON.stringify({ error: { code, message } })

const statusDefaults = (
  status: ErrorStatus,
  ctx: FaultContext
): { readonly message: string; readonly metadata?: Readonly<Record<string, unknown>> } => {
  switch (status) {
    case 400:
      return { message: "Invalid request" }
    case 401:
      return { message: "User not found." }
    case 402:
      return { message: "Insufficient credits. Add more using https://openrouter.ai/settings/credits" }
    case 403:
      return {
        message: `${ctx.model} requires moderation on ${ctx.provider}. Your input was flagged for "harassment". No credits were charged.`,
        metadata: {
          reasons: ["harassment"],
          flagged_input: ctx.userText.length > 100 ? `${ctx.userText.slice(0, 100)}...` : ctx.userText,
          provider_name: ctx.provider,
          model_slug: ctx.model
        }
      }
    case 404:
      return { message: `No endpoints found for ${ctx.model}.` }
    case 408:
      return { message: "Request timed out" }
    case 500:
      return { message: "Internal Server Error" }
    case 502:
      return {
        message: "Provider returned error",
        metadata: {
          provider_name: ctx.provider,
          raw: "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
        }
      }
    case 503:
      return { message: "No allowed providers are available for the selected model." }
    case 504:
      return { message: "Gateway Timeout" }
  }
}

const rateLimitReply = (
  limit: number,
  resetAt: number,
  message: string,
  retryAfterSeconds: number | undefined
): ErrorReply => {
  const rateHeaders = {
    "X-RateLimit-Limit": String(limit),
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": String(resetAt)
  }
  return {
    status: 429,
    headers: retryAfterSeconds === undefined ? rateHeaders : { ...rateHeaders, "Retry-After": String(retryAfterSeconds) },
    body: errorBody(429, message, { headers: rateHeaders })
  }
}

const nextUtcMidnight = (now: number): number => {
  const d = new Date(now)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
}

/** The reply to a transport fault that answers (everything but `delay` and `drop`). */
export const errorReply = (
  fault: Exclude<TransportFault, { readonly kind: "delay" | "drop" }>,
  ctx: FaultContext
): ErrorReply => {
  switch (fault.kind) {
    case "status": {
      const defaults = statusDefaults(fault.status, ctx)
      return {
        status: fault.status,
        headers: {},
        body: errorBody(
          fault.status,
          fault.echoAuthorization === true ? `Invalid credentials: ${ctx.authorization ?? "(none)"}` : fault.message ?? defaults.message,
          fault.metadata ?? defaults.metadata
        )
      }
    }
    case "rate_limited":
      return rateLimitReply(
        fault.limit ?? 20,
        Date.now() + (fault.resetInMs ?? 1000),
        `Rate limit exceeded: limit_rpm/${ctx.model}`,
        fault.retryAfterSeconds
      )
    case "daily_quota":
      return rateLimitReply(
        50,
        nextUtcMidnight(Date.now()),
        "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        undefined
      )
    case "unknown_model":
      return { status: 404, headers: {}, body: errorBody(404, `No endpoints found for ${ctx.model}.`) }
  }
}

/** The 200-with-error body: a provider failure that OpenRouter forwards without choices. */
export const errorIn200Body = (ctx: FaultContext): string =>
  errorBody(502, "Provider returned error", { provider_name: ctx.provider, raw: "upstream returned an empty response" })

/** mulberry32: a tiny seeded PRNG, so that a failure pattern replays identically. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

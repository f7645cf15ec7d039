/**
 * A local HTTP server speaking OpenRouter's wire format (see /work/shared/openrouter-wire.md), for
 * integration tests, reliability tests and benchmarks. Faults are injected per request.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import { Effect, type Scope } from "effect"
import {
  anonymousErrorBody,
  type BodyFault,
  type EndpointFault,
  errorBody,
  errorIn200Body,
  errorReply,
  type Fault,
  type FaultContext,
  type FaultKind,
  seededRandom
} from "./emulatorFaults.js"
import { requestedSchema, type Spoil, structuredAnswer, wantsJsonSchema } from "./emulatorStructured.js"

export type { EndpointFault, ErrorStatus, Fault, FaultKind } from "./emulatorFaults.js"

/** USD per token, as decimal strings like OpenRouter's `/models` pricing. */
export interface Price {
  readonly prompt: string
  readonly completion: string
  readonly request?: string
  readonly input_cache_read?: string
}

export type PriceTable = Readonly<Record<string, Price>>

export const DEFAULT_PRICES: PriceTable = {
  "openai/gpt-4o-mini": { prompt: "0.00000015", completion: "0.0000006" },
  "openai/gpt-4o": { prompt: "0.0000025", completion: "0.00001", input_cache_read: "0.00000125" },
  "anthropic/claude-3.5-sonnet": { prompt: "0.000003", completion: "0.000015", input_cache_read: "0.0000003" },
  "anthropic/claude-3-opus": { prompt: "0.000015", completion: "0.000075" },
  "meta-llama/llama-3.1-8b-instruct": { prompt: "0.00000002", completion: "0.00000005" },
  "meta-llama/llama-3.3-70b-instruct:free": { prompt: "0", completion: "0" }
}

export interface KeyInfo {
  /** false: `/key` and completions answer 401 whatever the key. */
  readonly valid: boolean
  readonly label: string
  readonly limit: number | null
  readonly limit_remaining: number | null
  readonly usage: number
  readonly usage_daily: number
  readonly usage_weekly: number
  readonly usage_monthly: number
  readonly is_free_tier: boolean
  readonly rate_limit?: { readonly requests: number; readonly interval: string }
}

export interface EmulatorOptions {
  /** Delay before every completion that is generated (default 0). */
  readonly latencyMs?: number
  /** Merged over DEFAULT_PRICES; a model outside the table gets OpenRouter's 404. */
  readonly prices?: PriceTable
  readonly contextLength?: number
  readonly keyInfo?: Partial<KeyInfo>
  /** Pause between the events of a stream (default 0: the whole stream in one write). */
  readonly streamChunkDelayMs?: number
  /** `/generation` answers 404 for this long after a generation is made, as OpenRouter's does (default 0). */
  readonly generationDelayMs?: number
  /** A fault of `GET /key` from the start, before any test code can call `keyFault` (the service checks the key at start). */
  readonly keyFault?: EndpointFault
}

/** Usage as sent on the wire; `cost` is the exact decimal text, null when the response omitted it. */
export interface EmulatedUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
  readonly cost: string | null
}

/** A fault kind, or a rejection the emulator made on its own (no or bad key, unparsable body). */
export type CallOutcome = "success" | FaultKind | "unauthorized" | "bad_request"

export interface RecordedCall {
  /** Date.now() on arrival, ms. */
  readonly at: number
  /** performance.now() on arrival. */
  readonly hrAt: number
  readonly body: any
  readonly headers: Readonly<Record<string, string>>
  readonly outcome: CallOutcome
  /** HTTP status sent; 0 when no response went out (drop, or the client left during a delay). */
  readonly status: number
  readonly generationId?: string
  readonly usage?: EmulatedUsage
}

export interface Emulator {
  /** e.g. http://127.0.0.1:PORT/api/v1, to use as OPENROUTER_BASE_URL. */
  readonly baseUrl: string
  readonly port: number
  /** Each upcoming completion request consumes the next fault; an empty queue means success. */
  script(...faults: ReadonlyArray<Fault>): void
  /** Every completion request gets this fault until cleared with null (after the script runs out). */
  always(fault: Fault | null): void
  /** A share `rate` of completion requests (after script and always) fail with a seeded random pick. */
  failRandomly(rate: number, faults: ReadonlyArray<Fault>, seed?: number): void
  modelsFault(fault: EndpointFault | null): void
  keyFault(fault: EndpointFault | null): void
  readonly calls: ReadonlyArray<RecordedCall>
  /** Requests received on /chat/completions, whatever their outcome. */
  completionCount(): number
  /** Completion requests that got a scripted, `always` or random fault. */
  injectedFaults(): number
  modelsCalls(): number
  keyCalls(): number
  /** Requests received on `/generation`. */
  generationLookups(): number
  /** Clears calls, counters, generations, the script and every fault mode. */
  reset(): void
  close(): Promise<void>
}

// Exact decimals: OpenRouter's cost is tokens x price strings, and a float would round it.
interface Decimal {
  readonly units: bigint
  readonly scale: number
}

const parseDecimal = (text: string): Decimal => {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new Error(`emulator price must be a plain decimal string, got "${text}"`)
  const [whole, fraction = ""] = text.split(".")
  return { units: BigInt(`${whole}${fraction}`), scale: fraction.length }
}

const weightedSum = (terms: ReadonlyArray<readonly [bigint, Decimal]>): Decimal => {
  const scale = Math.max(0, ...terms.map(([, d]) => d.scale))
  let units = 0n
  for (const [count, d] of terms) units += count * d.units * 10n ** BigInt(scale - d.scale)
  return { units, scale }
}

/** Plain decimal text, never exponent notation, no trailing zeros: valid as a JSON number literal. */
const formatDecimal = ({ scale, units }: Decimal): string => {
  const digits = units.toString().padStart(scale + 1, "0")
  const whole = digits.slice(0, digits.length - scale)
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "")
  return fraction === "" ? whole : `${whole}.${fraction}`
}

interface CompiledPrice {
  readonly prompt: Decimal
  readonly completion: Decimal
  readonly request: Decimal
}

const compilePrices = (table: PriceTable): ReadonlyMap<string, CompiledPrice> =>
  new Map(
    Object.entries(table).map(([model, p]) => [
      model,
      {
        prompt: parseDecimal(p.prompt),
        completion: parseDecimal(p.completion),
        request: parseDecimal(p.request ?? "0")
      }
    ])
  )

const DEFAULT_COMPILED = compilePrices(DEFAULT_PRICES)

interface Billing {
  readonly total: string
  readonly prompt: string
  readonly completion: string
}

const bill = (price: CompiledPrice, promptTokens: number, completionTokens: number): Billing => ({
  total: formatDecimal(
    weightedSum([
      [BigInt(promptTokens), price.prompt],
      [BigInt(completionTokens), price.completion],
      [1n, price.request]
    ])
  ),
  prompt: formatDecimal(weightedSum([[BigInt(promptTokens), price.prompt]])),
  completion: formatDecimal(weightedSum([[BigInt(completionTokens), price.completion]]))
})

const priceOf = (model: string, prices: ReadonlyMap<string, CompiledPrice>): CompiledPrice => {
  const price = prices.get(model)
  if (price === undefined) throw new Error(`no emulator price for ${model}`)
  return price
}

/** The exact cost the emulator bills, as decimal text (e.g. "0.00002415"). */
export const expectedCost = (
  model: string,
  promptTokens: number,
  completionTokens: number,
  prices: PriceTable = DEFAULT_PRICES
): string =>
  bill(priceOf(model, prices === DEFAULT_PRICES ? DEFAULT_COMPILED : compilePrices(prices)), promptTokens, completionTokens)
    .total

// Deterministic token counts and content, so tests can predict usage and cost from the request.
const textOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let text = ""
  for (const part of content) if (typeof part?.text === "string") text += part.text
  return text
}

const promptTokensOf = (messages: ReadonlyArray<any>): number => {
  let chars = 0
  for (const m of messages) chars += textOf(m?.content).length
  return Math.ceil(chars / 4) + 4 * messages.length
}

const lastUserText = (messages: ReadonlyArray<any>): string => {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === "user") return textOf(messages[i].content)
  return ""
}

const fnv1a = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16).padStart(8, "0")
}

// 113 characters, so that the whole summary is 132 characters = 33 tokens, as in the wire doc's example.
const SENTENCE =
  "The policy now states its terms in plainer words; all of its data retention, sharing and notice rules stay as-is."

const summaryOf = (userText: string): string => `Summary: ${fnv1a(userText)}. ${SENTENCE}`

const spoilOf = (fault: BodyFault | null): Spoil | undefined =>
  fault?.kind === "invalid_json" || fault?.kind === "schema_break" || fault?.kind === "invented_quote" ? fault.kind : undefined

/** The full answer to `body`: JSON for the schema it asks for (see emulatorStructured.ts), else the text summary. */
const answerOf = (body: any, fault: BodyFault | null = null): string => {
  const userText = lastUserText(body.messages)
  const schema = requestedSchema(body)
  return schema === null ? summaryOf(userText) : structuredAnswer(body, schema, `Summary: ${fnv1a(userText)}.`, spoilOf(fault))
}

/** The 400 a server without structured outputs answers to `json_schema`. */
const JSON_SCHEMA_REFUSAL: Fault = {
  kind: "status",
  status: 400,
  message: "Invalid request: response_format of type json_schema is not supported by this server"
}

const tokensOf = (text: string): number => Math.ceil(text.length / 4)

const maxTokensOf = (body: any): number => {
  const max = body.max_tokens ?? body.max_completion_tokens
  return typeof max === "number" && max >= 0 ? max : Number.POSITIVE_INFINITY
}

/** Content cut to `limit` tokens; `cut` says whether anything was removed. */
const capped = (text: string, limit: number): { readonly text: string; readonly cut: boolean } =>
  tokensOf(text) > limit ? { text: text.slice(0, limit * 4), cut: true } : { text, cut: false }

const candidateModels = (body: any): ReadonlyArray<string> => {
  const models: Array<string> = []
  if (typeof body.model === "string") models.push(body.model)
  if (Array.isArray(body.models)) for (const m of body.models) if (typeof m === "string") models.push(m)
  return models
}

export interface ExpectedUsage extends EmulatedUsage {
  /** The model that serves the request (the first of `model`, `models` that has a price). */
  readonly model: string
  readonly cost: string
}

/** The usage and exact cost of a fault-free completion of `body`. */
export const expectedUsage = (body: any, prices: PriceTable = DEFAULT_PRICES): ExpectedUsage => {
  const compiled = prices === DEFAULT_PRICES ? DEFAULT_COMPILED : compilePrices(prices)
  const model = candidateModels(body).find((m) => compiled.has(m))
  if (model === undefined) throw new Error("no requested model has an emulator price")
  const messages: ReadonlyArray<any> = body.messages
  const promptTokens = promptTokensOf(messages)
  const completionTokens = tokensOf(capped(answerOf(body), maxTokensOf(body)).text)
  return {
    model,
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    cost: bill(priceOf(model, compiled), promptTokens, completionTokens).total
  }
}

const providerOf = (model: string): string => {
  if (model.startsWith("openai/")) return "OpenAI"
  if (model.startsWith("anthropic/")) return "Anthropic"
  if (model.startsWith("meta-llama/")) return "DeepInfra"
  return "Emulator"
}

const ALPHANUMERICS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const generationIdAt = (created: number): string => {
  let id = `gen-${created}-`
  for (let i = 0; i < 20; i++) id += ALPHANUMERICS.charAt(Math.floor(Math.random() * ALPHANUMERICS.length))
  return id
}

type FinishReason = "stop" | "length" | "content_filter" | "error"

interface Generation {
  readonly id: string
  readonly created: number
  readonly model: string
  readonly provider: string
  readonly content: string | null
  readonly finishReason: FinishReason
  readonly choiceError?: { readonly code: number; readonly message: string }
  readonly withChoices: boolean
  readonly promptTokens: number
  readonly completionTokens: number
  readonly billing: Billing
  /** false for `no_cost`: the usage sent omits cost, though the generation record keeps it. */
  readonly reportsCost: boolean
  readonly streamed: boolean
  /** performance.now() when it was made, for `generationDelayMs`. */
  readonly madeAt: number
}

const SYSTEM_FINGERPRINT = "fp_e0a1c2d3b4"

// usage is written by hand so that cost goes out as its exact decimal text, never through a float.
const usageJson = (g: Generation): string =>
  `{"prompt_tokens":${g.promptTokens},"completion_tokens":${g.completionTokens},` +
  `"total_tokens":${g.promptTokens + g.completionTokens}` +
  (g.reportsCost ? `,"cost":${g.billing.total}` : "") +
  `,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}` +
  (g.reportsCost
    ? `,"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":${g.billing.prompt},` +
      `"upstream_inference_completions_cost":${g.billing.completion}}`
    : "") +
  "}"

/** JSON of `head` with a raw JSON field appended, for fields that must not pass through JSON.stringify. */
const withRawField = (head: object, name: string, raw: string): string =>
  `${JSON.stringify(head).slice(0, -1)},"${name}":${raw}}`

const envelope = (g: Generation, object: string) => ({
  id: g.id,
  provider: g.provider,
  model: g.model,
  object,
  created: g.created,
  system_fingerprint: SYSTEM_FINGERPRINT
})

const completionJson = (g: Generation): string =>
  withRawField(
    {
      ...envelope(g, "chat.completion"),
      choices: g.withChoices
        ? [
            {
              index: 0,
              logprobs: null,
              finish_reason: g.finishReason,
              native_finish_reason: g.finishReason,
              message: { role: "assistant", content: g.content, refusal: null, reasoning: null },
              ...(g.choiceError === undefined ? {} : { error: g.choiceError })
            }
          ]
        : []
    },
    "usage",
    usageJson(g)
  )

const PROCESSING = ": OPENROUTER PROCESSING\n\n"
const DONE = "data: [DONE]\n\n"
const STREAM_PIECE_CHARS = 32

const sseData = (json: string): string => `data: ${json}\n\n`

/** SSE: content chunks, then the finish_reason chunk, then usage alone with `choices: []`, then [DONE]. */
const streamText = (g: Generation): string => {
  const head = envelope(g, "chat.completion.chunk")
  let out = PROCESSING
  if (g.withChoices) {
    const content = g.content ?? ""
    for (let i = 0; i < content.length; i += STREAM_PIECE_CHARS) {
      const delta = { role: "assistant", content: content.slice(i, i + STREAM_PIECE_CHARS) }
      out += sseData(
        JSON.stringify({
          ...head,
          choices: [{ index: 0, delta, finish_reason: null, native_finish_reason: null, logprobs: null }]
        })
      )
      out += PROCESSING
    }
    out += sseData(
      JSON.stringify({
        ...head,
        // In a stream the failure is signalled by a top-level error on the finishing chunk.
        ...(g.choiceError === undefined ? {} : { error: g.choiceError }),
        choices: [
          {
            index: 0,
            delta: { role: "assistant", content: "" },
            finish_reason: g.finishReason,
            native_finish_reason: g.finishReason,
            logprobs: null
          }
        ]
      })
    )
  }
  return out + sseData(withRawField({ ...head, choices: [] }, "usage", usageJson(g))) + DONE
}

const generationRecordJson = (g: Generation, latencyMs: number): string =>
  `{"data":${withRawField(
    {
      id: g.id,
      created_at: new Date(g.created * 1000).toISOString(),
      model: g.model,
      provider_name: g.provider,
      tokens_prompt: g.promptTokens,
      tokens_completion: g.completionTokens,
      native_tokens_prompt: g.promptTokens,
      native_tokens_completion: g.completionTokens,
      finish_reason: g.finishReason,
      native_finish_reason: g.finishReason,
      latency: latencyMs,
      generation_time: latencyMs,
      streamed: g.streamed,
      cancelled: false,
      is_byok: false
    },
    "total_cost",
    g.billing.total
  )}}`

interface Payload {
  readonly body: string
  readonly stream: boolean
  readonly headers: Readonly<Record<string, string>>
}

/** Half of the payload with its last data line broken, so no JSON parser accepts it. */
const corrupted = (p: Payload): string => {
  if (!p.stream) return p.body.slice(0, p.body.length >> 1)
  const start = p.body.indexOf("data: ") + 6
  const end = p.body.indexOf("\n", start)
  return `${p.body.slice(0, start + ((end - start) >> 1))}\n\n${DONE}`
}

const gone = (res: ServerResponse): boolean => res.destroyed || res.socket === null || res.socket.destroyed

const sendJson = (res: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>> = {}) => {
  if (gone(res)) return
  res.writeHead(status, { ...headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) })
  res.end(body)
}

// Streams go out chunked, as OpenRouter sends them; other bodies carry their length.
const payloadHeaders = (p: Payload, sent: string): Record<string, string | number> =>
  p.stream
    ? { ...p.headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache" }
    : { ...p.headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(sent) }

/** A completion whose content is `bytes` long, written a chunk at a time as the client reads it. */
const streamHugeContent = async (res: ServerResponse, bytes: number, ctx: FaultContext): Promise<number> => {
  const chunk = "a".repeat(1_048_576)
  res.writeHead(200, { "Content-Type": "application/json" })
  const write = (text: string) =>
    new Promise<boolean>((resolve) => {
      if (gone(res)) return resolve(false)
      if (res.write(text)) return resolve(true)
      const done = (ok: boolean) => () => {
        res.off("drain", onDrain)
        res.off("close", onClose)
        resolve(ok)
      }
      const onDrain = done(true)
      const onClose = done(false)
      res.once("drain", onDrain)
      res.once("close", onClose)
    })
  const head = `{"id":"gen-huge","provider":"${ctx.provider}","model":"${ctx.model}","object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"`
  if (!(await write(head))) return 200
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!(await write(sent + chunk.length <= bytes ? chunk : chunk.slice(0, bytes - sent)))) return 200
  }
  if (await write(`"}}],"usage":{"prompt_tokens":10,"completion_tokens":${Math.ceil(bytes / 4)},"total_tokens":${10 + Math.ceil(bytes / 4)},"cost":0.01}}`)) res.end()
  return 200
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const headersOf = (req: IncomingMessage): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return headers
}

const hasBearer = (authorization: string | undefined): boolean =>
  authorization !== undefined && /^Bearer\s+\S+/.test(authorization)

const ENDPOINT_CONTEXT: FaultContext = { model: "openrouter/auto", provider: "OpenRouter", userText: "" }

type CallRecord = { -readonly [K in keyof RecordedCall]: RecordedCall[K] }

export const startEmulator = async (options: EmulatorOptions = {}): Promise<Emulator> => {
  const latencyMs = options.latencyMs ?? 0
  const streamChunkDelayMs = options.streamChunkDelayMs ?? 0
  const generationDelayMs = options.generationDelayMs ?? 0
  let generationLookups = 0
  const priceTable: PriceTable = { ...DEFAULT_PRICES, ...options.prices }
  const prices = compilePrices(priceTable)
  const contextLength = options.contextLength ?? 128_000
  const keyInfo: KeyInfo = {
    valid: true,
    label: "sk-or-v1-emu...a1b",
    limit: null,
    limit_remaining: null,
    usage: 0,
    usage_daily: 0,
    usage_weekly: 0,
    usage_monthly: 0,
    is_free_tier: false,
    ...options.keyInfo
  }
  // Both bodies are fixed for the emulator's life, so they are serialized once.
  const modelsBody = JSON.stringify({
    data: Object.entries(priceTable).map(([id, p]) => ({
      id,
      name: id,
      context_length: contextLength,
      pricing: {
        prompt: p.prompt,
        completion: p.completion,
        request: p.request ?? "0",
        image: "0",
        input_cache_read: p.input_cache_read ?? "0",
        input_cache_write: "0"
      },
      top_provider: {
        context_length: contextLength,
        max_completion_tokens: 16_384,
        is_moderated: providerOf(id) === "OpenAI" || providerOf(id) === "Anthropic"
      }
    }))
  })
  const { valid: _valid, ...keyData } = keyInfo
  const keyBody = JSON.stringify({ data: keyData })

  const calls: Array<CallRecord> = []
  const generations = new Map<string, Generation>()
  let queue: Array<Fault> = []
  let alwaysFault: Fault | null = null
  let random: { readonly rate: number; readonly faults: ReadonlyArray<Fault>; readonly next: () => number } | null =
    null
  let modelsFault: EndpointFault | null = null
  let keyFault: EndpointFault | null = options.keyFault ?? null
  let injected = 0
  let modelsCalls = 0
  let keyCalls = 0

  const timers = new Set<NodeJS.Timeout>()
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer)
        resolve()
      }, ms)
      timers.add(timer)
    })

  const nextFault = (): Fault | null => {
    const scripted = queue.shift()
    if (scripted !== undefined) return scripted
    if (alwaysFault !== null) return alwaysFault
    if (random !== null && random.next() < random.rate) {
      return random.faults[Math.floor(random.next() * random.faults.length)] ?? null
    }
    return null
  }

  /** Answers `fault` (null: success) and returns the HTTP status sent, 0 if none. */
  const respond = async (
    res: ServerResponse,
    fault: Fault | null,
    ctx: FaultContext,
    payload: (fault: BodyFault | null) => Promise<Payload>
  ): Promise<number> => {
    switch (fault?.kind) {
      case "delay":
        await sleep(fault.ms)
        // The client may have given up meanwhile: there is nobody left to answer.
        return gone(res) ? 0 : respond(res, fault.then ?? null, ctx, payload)
      case "drop":
        res.socket?.destroy()
        return 0
      case "huge_content":
        return streamHugeContent(res, fault.bytes, ctx)
      case "status":
      case "rate_limited":
      case "daily_quota":
      case "unknown_model": {
        const reply = errorReply(fault, ctx)
        sendJson(res, reply.status, reply.body, reply.headers)
        return reply.status
      }
      default: {
        const p = await payload(fault ?? null)
        if (gone(res)) return 0
        const sent = fault?.kind === "malformed_json" ? corrupted(p) : p.body
        res.writeHead(200, payloadHeaders(p, sent))
        // cut_body: the full length is promised, half is written, then the connection dies mid-body.
        if (fault?.kind === "cut_body") res.write(sent.slice(0, sent.length >> 1), () => res.socket?.destroy())
        else if (p.stream && streamChunkDelayMs > 0) {
          // Event by event, as a model generates them; a client that leaves stops the rest.
          const events = sent.split(/(?<=\n\n)/)
          for (const [i, event] of events.entries()) {
            if (gone(res)) return 200
            if (i > 0) await sleep(streamChunkDelayMs)
            if (gone(res)) return 200
            res.write(event)
          }
          res.end()
        } else res.end(sent)
        return 200
      }
    }
  }

  const completion = async (req: IncomingMessage, res: ServerResponse) => {
    const record: CallRecord = {
      at: Date.now(),
      hrAt: performance.now(),
      body: undefined,
      headers: headersOf(req),
      outcome: "success",
      status: 200
    }
    calls.push(record)
    const raw = await readBody(req)
    const reject = (outcome: CallOutcome, status: number, body: string) => {
      record.outcome = outcome
      record.status = status
      sendJson(res, status, body)
    }
    if (!hasBearer(req.headers.authorization)) {
      return reject("unauthorized", 401, anonymousErrorBody(401, "No auth credentials found"))
    }
    if (!keyInfo.valid) return reject("unauthorized", 401, anonymousErrorBody(401, "User not found."))
    let body: any
    try {
      body = JSON.parse(raw)
    } catch {
      return reject("bad_request", 400, errorBody(400, "Invalid JSON in request body"))
    }
    record.body = body
    if (!Array.isArray(body?.messages) || body.messages.length === 0) {
      return reject("bad_request", 400, errorBody(400, "messages must be a non-empty array"))
    }
    const requested = candidateModels(body)
    if (requested.length === 0) return reject("bad_request", 400, errorBody(400, "No models provided"))
    const model = requested.find((m) => prices.has(m))
    if (model === undefined) {
      return reject("unknown_model", 404, errorBody(404, `No endpoints found for ${requested[0]}.`))
    }

    const messages: ReadonlyArray<any> = body.messages
    const userText = lastUserText(messages)
    const ctx: FaultContext = {
      model,
      provider: providerOf(model),
      userText,
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization })
    }
    const stream = body.stream === true
    const next = nextFault()
    const fault = next?.kind === "refuse_json_schema" ? (wantsJsonSchema(body) ? JSON_SCHEMA_REFUSAL : null) : next
    if (next?.kind === "refuse_json_schema" && fault === null) injected++
    if (fault !== null) {
      injected++
      record.outcome = fault.kind
    }

    const payload = async (bodyFault: BodyFault | null): Promise<Payload> => {
      if (bodyFault?.kind === "error_in_200") {
        const error = errorIn200Body(ctx)
        return { body: stream ? PROCESSING + sseData(error) + DONE : error, stream, headers: {} }
      }
      if (latencyMs > 0) await sleep(latencyMs)
      const created = Math.floor(Date.now() / 1000)
      const id = generationIdAt(created)
      const full = answerOf(body, bodyFault)
      let content: string | null = full
      let finishReason: FinishReason = "stop"
      let choiceError: Generation["choiceError"]
      switch (bodyFault?.kind) {
        case "no_choices":
          content = ""
          break
        case "finish_error":
          content = ""
          finishReason = "error"
          choiceError = { code: 502, message: `${ctx.provider} error: upstream connection reset` }
          break
        case "empty_content":
          finishReason = bodyFault.finishReason ?? "stop"
          // A filtered answer comes back as null content, which clients must not call string methods on.
          content = finishReason === "content_filter" ? null : ""
          break
      }
      if (content !== null) {
        const limit = Math.min(maxTokensOf(body), bodyFault?.kind === "length" ? tokensOf(full) >> 1 : Infinity)
        const cut = capped(content, limit)
        content = cut.text
        if (cut.cut) finishReason = "length"
      }
      const promptTokens = promptTokensOf(messages)
      const completionTokens = tokensOf(content ?? "")
      const g: Generation = {
        id,
        created,
        model,
        provider: ctx.provider,
        content,
        finishReason,
        ...(choiceError === undefined ? {} : { choiceError }),
        withChoices: bodyFault?.kind !== "no_choices",
        promptTokens,
        completionTokens,
        billing: bill(priceOf(model, prices), promptTokens, completionTokens),
        reportsCost: bodyFault?.kind !== "no_cost",
        streamed: stream,
        madeAt: performance.now()
      }
      record.generationId = id
      record.usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        cost: g.reportsCost ? g.billing.total : null
      }
      generations.set(id, g)
      return { body: stream ? streamText(g) : completionJson(g), stream, headers: { "X-Generation-Id": id } }
    }

    record.status = await respond(res, fault, ctx, payload)
  }

  const endpoint = (req: IncomingMessage, res: ServerResponse, fault: EndpointFault | null, body: string) =>
    respond(
      res,
      fault,
      req.headers.authorization === undefined ? ENDPOINT_CONTEXT : { ...ENDPOINT_CONTEXT, authorization: req.headers.authorization },
      async () => ({ body, stream: false, headers: {} })
    )

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/"
    const queryAt = url.indexOf("?")
    const path = queryAt === -1 ? url : url.slice(0, queryAt)
    if (req.method === "POST" && path === "/api/v1/chat/completions") return completion(req, res)
    if (req.method === "GET" && path === "/api/v1/models") {
      modelsCalls++
      return endpoint(req, res, modelsFault, modelsBody)
    }
    if (req.method === "GET" && (path === "/api/v1/key" || path === "/api/v1/auth/key")) {
      keyCalls++
      if (!hasBearer(req.headers.authorization)) {
        return sendJson(res, 401, anonymousErrorBody(401, "No auth credentials found"))
      }
      if (!keyInfo.valid) return sendJson(res, 401, anonymousErrorBody(401, "User not found."))
      return endpoint(req, res, keyFault, keyBody)
    }
    if (req.method === "GET" && path === "/api/v1/generation") {
      if (!hasBearer(req.headers.authorization)) {
        return sendJson(res, 401, anonymousErrorBody(401, "No auth credentials found"))
      }
      const id = new URLSearchParams(url.slice(queryAt + 1)).get("id") ?? ""
      generationLookups++
      const found = generations.get(id)
      const generation = found !== undefined && performance.now() - found.madeAt >= generationDelayMs ? found : undefined
      return generation === undefined
        ? sendJson(res, 404, errorBody(404, `Generation ${id} not found`))
        : sendJson(res, 200, generationRecordJson(generation, latencyMs))
    }
    sendJson(res, 404, anonymousErrorBody(404, "Not Found"))
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      // An emulator bug must fail the test that hit it, not crash the process.
      if (!res.headersSent) sendJson(res, 500, errorBody(500, `emulator error: ${String(error)}`))
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port

  let closing: Promise<void> | undefined
  return {
    baseUrl: `http://127.0.0.1:${port}/api/v1`,
    port,
    script: (...faults) => {
      queue.push(...faults)
    },
    always: (fault) => {
      alwaysFault = fault
    },
    failRandomly: (rate, faults, seed = 1) => {
      random = rate > 0 && faults.length > 0 ? { rate, faults: [...faults], next: seededRandom(seed) } : null
    },
    modelsFault: (fault) => {
      modelsFault = fault
    },
    keyFault: (fault) => {
      keyFault = fault
    },
    calls,
    completionCount: () => calls.length,
    injectedFaults: () => injected,
    modelsCalls: () => modelsCalls,
    keyCalls: () => keyCalls,
    generationLookups: () => generationLookups,
    reset: () => {
      calls.length = 0
      generations.clear()
      queue = []
      alwaysFault = null
      random = null
      modelsFault = null
      keyFault = null
      injected = 0
      modelsCalls = 0
      keyCalls = 0
      generationLookups = 0
    },
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeAllConnections()
      })
      return closing
    }
  }
}

/** The emulator as a scoped resource: it listens until the scope closes. */
export const makeEmulator = (options: EmulatorOptions = {}): Effect.Effect<Emulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startEmulator(options)),
    (emulator) => Effect.promise(() => emulator.close())
  )

export const OpenRouterEmulator: Effect.Effect<Emulator, never, Scope.Scope> = makeEmulator()

import { describe, expect, it } from "@effect/vitest"
import type { Context } from "effect"
import { Cause, ConfigProvider, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Tracer } from "effect"
import { Config, load } from "../../../src/Config.js"
import * as Spans from "../../../src/telemetry/Spans.js"
import { Tracing } from "../../../src/telemetry/Tracing.js"

/** A span as a test reads it back. */
class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly traceId = "trace"
  readonly sampled = true
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly spanId: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    readonly links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
    if (this.status._tag === "Started") this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown) {
    this.attributes.set(key, value)
  }
  event() {}
  addLinks() {}
  get parentName() {
    return Option.match(this.parent, { onNone: () => null, onSome: (p) => p._tag === "Span" ? p.name : "external" })
  }
  get exit() {
    return this.status._tag === "Ended" ? this.status.exit : undefined
  }
}

const recording = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const span = new RecordedSpan(name, String(spans.length + 1), parent, context, links, startTime, kind)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { spans, layer: Layer.setTracer(tracer) }
}

const summary = { status: "summarized", attempts: 2, cached: false, fallbackReason: null } as const

/** One summary's path: two attempts (the first fails), each waiting for a permit and committing a row. */
const onePath = (permit: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const counter = yield* Ref.make(0)
    const attempt = (fail: boolean) =>
      Spans.limiterWait((entered) => Effect.zipRight(permit, entered(Ref.update(counter, (n) => n + 1)))).pipe(
        Effect.zipRight(Effect.void.pipe(Spans.ledgerCommit(fail ? "row-1" : "row-2"))),
        Effect.zipRight(fail ? Effect.fail({ _tag: "UpstreamServerError", message: "upstream said: We keep your data 90 days" }) : Effect.void),
        Spans.attempt(counter, "openai/gpt-4o-mini", "summary")
      )
    yield* Effect.ignore(attempt(true))
    yield* attempt(false)
    // Refused before it was sent: the counter does not move.
    yield* Effect.ignore(Effect.fail({ _tag: "CircuitOpen" }).pipe(Spans.attempt(counter, "openai/gpt-4o-mini", "summary")))
    return summary
  }).pipe(Spans.summarize)

describe("Spans", () => {
  it.effect("one summary: summarize, each attempt with its number, its limiter wait and its ledger row id; a failure says only its tag", () => {
    const { spans, layer } = recording()
    return Effect.gen(function*() {
      yield* onePath(Effect.void)
      expect(spans.map((s) => [s.name, s.parentName])).toEqual([
        ["summarize", null],
        ["llm.attempt", "summarize"],
        ["limiter.wait", "llm.attempt"],
        ["ledger.commit", "llm.attempt"],
        ["llm.attempt", "summarize"],
        ["limiter.wait", "llm.attempt"],
        ["ledger.commit", "llm.attempt"],
        ["llm.attempt", "summarize"]
      ])
      expect(spans.every((s) => s.status._tag === "Ended")).toBe(true)
      const attempts = spans.filter((s) => s.name === "llm.attempt")
      expect(attempts.map((s) => Object.fromEntries(s.attributes))).toEqual([
        { "llm.model": "openai/gpt-4o-mini", "llm.purpose": "summary", "llm.attempt.number": 1, "llm.sent": true },
        { "llm.model": "openai/gpt-4o-mini", "llm.purpose": "summary", "llm.attempt.number": 2, "llm.sent": true },
        { "llm.model": "openai/gpt-4o-mini", "llm.purpose": "summary", "llm.sent": false }
      ])
      expect(spans.filter((s) => s.name === "ledger.commit").map((s) => s.attributes.get("ledger.row_id"))).toEqual(["row-1", "row-2"])
      expect(Object.fromEntries(spans[0]!.attributes)).toEqual({ "summary.status": "summarized", "summary.attempts": 2, "summary.cached": false })
      const failed = attempts[0]!.exit!
      expect(Exit.isFailure(failed) && Cause.squash(failed.cause)).toMatchObject({ name: "UpstreamServerError", message: "UpstreamServerError" })
    }).pipe(Effect.provide(layer))
  })

  it.effect("limiter.wait ends when the permit is held, not when the call ends", () => {
    const { spans, layer } = recording()
    return Effect.gen(function*() {
      const permit = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Spans.limiterWait((entered) => Effect.zipRight(Deferred.await(permit), entered(Deferred.await(release))))
      )
      yield* Effect.yieldNow()
      expect(spans.map((s) => [s.name, s.status._tag])).toEqual([["limiter.wait", "Started"]])
      yield* Deferred.succeed(permit, undefined)
      yield* Effect.yieldNow()
      expect(spans.map((s) => [s.name, s.status._tag])).toEqual([["limiter.wait", "Ended"]])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(fiber)
    }).pipe(Effect.provide(layer))
  })

  it.effect("without OTEL_EXPORTER_OTLP_ENDPOINT the service's Tracing makes no span at all", () => {
    const { spans, layer } = recording()
    const config = Layer.effect(Config, load.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))))
    return onePath(Effect.void).pipe(
      Effect.zipRight(Effect.void.pipe(Effect.withSpan("anything"))),
      Effect.provide(Tracing.pipe(Layer.provide(config))),
      Effect.provide(layer),
      Effect.map(() => expect(spans).toEqual([]))
    )
  })
})

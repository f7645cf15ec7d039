import type { Tracer } from "effect"
import { Cause, Clock, Effect, Exit, FiberRef, Option } from "effect"

/**
 * The spans of the request → summarize → limiter wait → upstream attempt → ledger commit path.
 * Each is one wrapper at its call site; names and attributes live here. Attributes are fixed
 * codes, counts and ids, never message text: an upstream error can quote the prompt, and a trace
 * store is read by more people than the ledger is.
 */

type Attributes = Readonly<Record<string, unknown>>

/** A failure as a span records it: the error's tag only. */
class SpanFailure extends Error {
  constructor(code: string) {
    super(code)
    this.name = code
    this.stack = code
  }
}

const codeOf = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => "Defect",
    onSome: (error) =>
      typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string" ? error._tag : "Failure"
  })

const recorded = (exit: Exit.Exit<unknown, unknown>): Exit.Exit<unknown, unknown> =>
  Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause) ? exit : Exit.fail(new SpanFailure(codeOf(exit.cause)))

const end = (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>) =>
  span.status._tag === "Ended" ? Effect.void : Effect.flatMap(Clock.currentTimeNanos, (now) => Effect.sync(() => span.end(now, recorded(exit))))

const setAll = (span: Tracer.Span, attributes: Attributes) => {
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) span.attribute(key, value)
}

/** Without a tracer (no exporter configured) the effect runs as it is: no span object, no clock read. */
const whenTracing = <A, E, R>(self: Effect.Effect<A, E, R>, traced: () => Effect.Effect<A, E, R>) =>
  Effect.withFiberRuntime<A, E, R>((fiber) => fiber.getFiberRef(FiberRef.currentTracerEnabled) ? traced() : self)

const traced = <A, E, R>(name: string, attributes: Attributes, self: Effect.Effect<A, E, R>, onSuccess?: (a: A) => Attributes) =>
  whenTracing(self, () =>
    Effect.acquireUseRelease(
      Effect.makeSpan(name, { attributes, captureStackTrace: false }),
      (span) => {
        const inside = Effect.withParentSpan(self, span)
        return onSuccess === undefined ? inside : Effect.tap(inside, (a) => Effect.sync(() => setAll(span, onSuccess(a))))
      },
      end
    ))

/** The name of the server span the platform opens for every request. */
export const httpRequestName = () => "http.request"

/** One summary: its outcome and the number of upstream calls it made. */
export const summarize = <
  S extends { readonly status: string; readonly attempts: number; readonly cached: boolean; readonly fallbackReason: string | null },
  E,
  R
>(self: Effect.Effect<S, E, R>) =>
  traced("summarize", {}, self, (summary) => ({
    "summary.status": summary.status,
    "summary.attempts": summary.attempts,
    "summary.cached": summary.cached,
    "summary.fallback_reason": summary.fallbackReason ?? undefined
  }))

/**
 * One upstream attempt, from the budget check to its ledger row. `attempts` counts this call's
 * attempts; its value when the attempt ends is the attempt's number (an attempt refused before
 * it was sent, by the circuit or the budget, leaves it unchanged and says `llm.sent: false`).
 */
export const attempt = (attempts: Effect.Effect<number>, model: string, purpose: string | null) =>
<A, E, R>(self: Effect.Effect<A, E, R>) =>
  whenTracing(self, () =>
    Effect.flatMap(attempts, (before) =>
      traced(
        "llm.attempt",
        { "llm.model": model, "llm.purpose": purpose ?? undefined },
        Effect.ensuring(
          self,
          Effect.flatMap(attempts, (after) =>
            Effect.annotateCurrentSpan(after > before ? { "llm.attempt.number": after, "llm.sent": true } : { "llm.sent": false }))
        )
      )))

/**
 * The wait for a rate-limiter permit. `run` gets `entered`, to wrap what runs once the permit is
 * held: the span ends there, so it measures the queue and nothing of the call itself.
 */
export const limiterWait = <A, E, R>(
  run: (entered: <X, Y, Z>(inner: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>) => Effect.Effect<A, E, R>
) =>
  whenTracing(run((inner) => inner), () =>
    Effect.acquireUseRelease(
      Effect.makeSpan("limiter.wait", { captureStackTrace: false }),
      (span) => run((inner) => Effect.zipRight(end(span, Exit.void), inner)),
      end
    ))

/** A ledger row made durable; the row's id ties the trace to `GET /v1/usage/calls`. */
export const ledgerCommit = (rowId: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  traced("ledger.commit", { "ledger.row_id": rowId }, self)

import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

const Check = Schema.Struct({ ok: Schema.Boolean, detail: Schema.String })

export const Readiness = Schema.Struct({
  database: Check,
  upstream: Check,
  aiEnabled: Schema.Boolean,
  circuit: Schema.Literal("closed", "open", "half_open"),
  budget: Check,
  spoolDepth: Schema.Int,
  rateLimiter: Schema.Struct({
    mode: Schema.String,
    queueDepth: Schema.Int,
    inFlight: Schema.Int,
    pausedUntil: Schema.NullOr(Schema.String)
  })
})

/** Readiness fails with 503 only when the database is unreachable; the rest is reported. */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { readiness: Readiness },
  HttpApiSchema.annotations({ status: 503 })
) {}

export class HealthApi extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(HttpApiEndpoint.get("ready", "/health/ready").addSuccess(Readiness).addError(NotReady))
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  )
{}

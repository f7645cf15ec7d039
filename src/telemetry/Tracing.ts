import { Effect, Layer, Option, Redacted } from "effect"
import type { AppConfig } from "../Config.js"
import { Config } from "../Config.js"

/**
 * The OTLP/HTTP exporter, loaded only when an endpoint is set: a service that exports nothing
 * neither loads `@effect/opentelemetry` (nor the fetch client it sends with) nor makes spans (the tracer is switched off, so every
 * `Spans` wrapper runs its effect as it is).
 */
const exporter = (endpoint: string, telemetry: AppConfig["telemetry"]) =>
  Layer.unwrapEffect(Effect.promise(async () => {
    const [OtlpTracer, OtlpSerialization, FetchHttpClient] = await Promise.all([
      import("@effect/opentelemetry/OtlpTracer"),
      import("@effect/opentelemetry/OtlpSerialization"),
      import("@effect/platform/FetchHttpClient")
    ])
    return OtlpTracer.layer({
      url: `${endpoint}/v1/traces`,
      resource: { serviceName: telemetry.serviceName, attributes: Object.fromEntries(telemetry.resourceAttributes) },
      headers: Option.match(telemetry.headers, { onNone: () => ({}), onSome: (h) => Object.fromEntries(Redacted.value(h)) })
    }).pipe(
      Layer.provide(telemetry.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
      Layer.provide(FetchHttpClient.layer)
    )
  }))

/** Traces to `OTEL_EXPORTER_OTLP_ENDPOINT`, or none at all. Provide it under everything else. */
export const Tracing = Layer.unwrapEffect(Effect.map(Config, ({ telemetry }) =>
  Option.match(telemetry.endpoint, {
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) => exporter(endpoint, telemetry)
  })))

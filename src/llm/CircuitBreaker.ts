import { Context, Effect, Layer } from "effect"
import { Config } from "../Config.js"
import type { CircuitOpen } from "../domain/LlmError.js"
import { makeCircuitBreaker } from "./CircuitBreakerLive.js"

export type CircuitState = "closed" | "open" | "half_open"

/**
 * After `LLM_CIRCUIT_THRESHOLD` consecutive transient failures, upstream is not called for
 * `LLM_CIRCUIT_COOLDOWN_MS`; then a single probe decides whether to close.
 */
export class CircuitBreaker extends Context.Tag("CircuitBreaker")<CircuitBreaker, {
  /** Fails with `CircuitOpen` without running `effect` while open (or while another probe is out). */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  readonly recordSuccess: Effect.Effect<void>
  readonly recordTransientFailure: Effect.Effect<void>
  readonly state: Effect.Effect<CircuitState>
}>() {
  static readonly layer: Layer.Layer<CircuitBreaker, never, Config> = Layer.effect(
    this,
    Effect.flatMap(Config, ({ llm }) =>
      makeCircuitBreaker({ threshold: llm.circuitThreshold, cooldownMs: llm.circuitCooldownMs })
    )
  )
}

import { Clock, Context, Effect, Layer, Metric } from "effect"
import { Config } from "../Config.js"
import { CircuitOpen } from "../domain/LlmError.js"

export type CircuitState = "closed" | "open" | "half_open"

export interface CircuitBreakerService {
  /** Fails with `CircuitOpen` without running `effect` while open (or while another probe is out). */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  readonly recordSuccess: Effect.Effect<void>
  readonly recordTransientFailure: Effect.Effect<void>
  readonly state: Effect.Effect<CircuitState>
}

export interface CircuitBreakerOptions {
  /** Consecutive transient failures that open the circuit. */
  readonly threshold: number
  readonly cooldownMs: number
}

export const stateGauge = Metric.gauge("llm_circuit_state", {
  description: "Circuit breaker state: 0 closed, 1 half-open (one probe out), 2 open"
})

export const shortCircuits = Metric.counter("llm_circuit_short_circuits_total", {
  description: "Upstream calls refused at once because the circuit was open",
  incremental: true
})

const gaugeValue: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 }

/** While a probe is out, others are told to come back shortly: its answer is usually near. */
const probeRetryMs = 1_000

type State =
  | { readonly _tag: "closed"; readonly failures: number }
  | { readonly _tag: "open"; readonly until: number }
  | { readonly _tag: "half_open"; readonly probe: symbol | undefined }

type Admission = "run" | symbol | CircuitOpen

export const makeCircuitBreaker = (
  options: CircuitBreakerOptions
): Effect.Effect<CircuitBreakerService> =>
  Effect.gen(function*() {
    let state: State = { _tag: "closed", failures: 0 }

    const enter = (next: State, fields: Record<string, unknown>) => {
      state = next
      const line = next._tag === "open"
        ? Effect.logWarning("Circuit breaker open: upstream calls stop for the cooldown")
        : next._tag === "half_open"
        ? Effect.logInfo("Circuit breaker half-open: letting one probe call through")
        : Effect.logInfo("Circuit breaker closed: upstream calls resume")
      return Effect.zipRight(line.pipe(Effect.annotateLogs(fields)), Metric.set(stateGauge, gaugeValue[next._tag]))
    }

    const open = (now: number, reason: string) =>
      enter({ _tag: "open", until: now + options.cooldownMs }, { reason, cooldownMs: options.cooldownMs })

    const admit = Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<Admission> => {
      switch (state._tag) {
        case "closed":
          return Effect.succeed("run")
        case "open": {
          if (now < state.until) return Effect.succeed(new CircuitOpen({ retryAfterMs: state.until - now }))
          const probe = Symbol("probe")
          return Effect.as(enter({ _tag: "half_open", probe }, {}), probe)
        }
        case "half_open": {
          if (state.probe !== undefined) return Effect.succeed(new CircuitOpen({ retryAfterMs: probeRetryMs }))
          const probe = Symbol("probe")
          state = { _tag: "half_open", probe }
          return Effect.succeed(probe)
        }
      }
    })

    // A probe that ended without an outcome being recorded (a budget refusal, an interruption)
    // proved nothing: free the slot so the next call probes.
    const endProbe = (probe: symbol) =>
      Effect.sync(() => {
        if (state._tag === "half_open" && state.probe === probe) state = { _tag: "half_open", probe: undefined }
      })

    const admitted = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(admit, (admission): Effect.Effect<A, E | CircuitOpen, R> => {
          if (admission === "run") return restore(effect)
          if (admission instanceof CircuitOpen) return Effect.zipRight(Metric.increment(shortCircuits), Effect.fail(admission))
          return Effect.ensuring(restore(effect), endProbe(admission))
        })
      )

    // Closed is the common case and needs no admission: the effect runs as it is.
    const guard = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.suspend(() => (state._tag === "closed" ? effect : admitted(effect)))

    const recordSuccess = Effect.suspend(() => {
      if (state._tag === "half_open") return enter({ _tag: "closed", failures: 0 }, { after: "successful probe" })
      if (state._tag === "closed" && state.failures > 0) state = { _tag: "closed", failures: 0 }
      return Effect.void
    })

    const recordTransientFailure = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      switch (state._tag) {
        case "half_open":
          return open(now, "probe failed")
        case "closed": {
          const failures = state.failures + 1
          if (failures >= options.threshold) return open(now, `${failures} consecutive transient failures`)
          state = { _tag: "closed", failures }
          return Effect.void
        }
        case "open":
          // Late outcomes of calls started before it opened do not move the cooldown.
          return Effect.void
      }
    })

    yield* Metric.set(stateGauge, 0)
    return { guard, recordSuccess, recordTransientFailure, state: Effect.sync(() => state._tag) }
  })

/**
 * After `LLM_CIRCUIT_THRESHOLD` consecutive transient failures, upstream is not called for
 * `LLM_CIRCUIT_COOLDOWN_MS`; then a single probe decides whether to close.
 */
export class CircuitBreaker extends Context.Tag("CircuitBreaker")<CircuitBreaker, CircuitBreakerService>() {
  static readonly layer: Layer.Layer<CircuitBreaker, never, Config> = Layer.effect(
    this,
    Effect.flatMap(Config, ({ llm }) =>
      makeCircuitBreaker({ threshold: llm.circuitThreshold, cooldownMs: llm.circuitCooldownMs })
    )
  )
}

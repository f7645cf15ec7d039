import { ConfigProvider, Effect, Layer, TestClock } from "effect"
import { Config } from "../../../src/Config.js"
import { RateLimiter } from "../../../src/llm/RateLimiter.js"

/** The limiter as the service builds it, from these environment variables only. */
export const limiterLayer = (vars: Readonly<Record<string, string>>) =>
  RateLimiter.layer.pipe(
    Layer.provide(Config.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)))))
  )

/** Moves virtual time forward in small steps, so every wake-up on the way happens at its own instant. */
export const advance = (ms: number, stepMs = 250) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(ms / stepMs) }, (_, i) => Math.min(stepMs, ms - i * stepMs)),
    (step) => TestClock.adjust(step),
    { discard: true }
  )

/** Lets forked fibers run until they block, without moving virtual time. */
export const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow(), { discard: true })

export { busiestWindow } from "../../support/SlidingWindow.js"

import { Effect, Layer } from "effect"
import { Config } from "../../src/Config.js"
import { fromSettings, RateLimiter } from "../../src/llm/RateLimiter.js"

/** The limiter as configured, keeping its shared window under its own Redis key prefix (tests and benches stay apart). */
export const rateLimiterUnder = (keyPrefix: string): Layer.Layer<RateLimiter, never, Config> =>
  Layer.scoped(RateLimiter, Effect.flatMap(Config, (config) => fromSettings(config.rateLimit, keyPrefix)))

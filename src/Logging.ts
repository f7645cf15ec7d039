import { Effect, Layer, Logger } from "effect"
import { Config } from "./Config.js"

/** JSON lines (or a readable form for a terminal) at the configured level. */
export const Logging = Layer.unwrapEffect(Effect.gen(function*() {
  const { log } = yield* Config
  return Layer.merge(
    log.format === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(log.level)
  )
}))

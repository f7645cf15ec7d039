import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Config, load } from "./Config.js"
import { HttpLive } from "./http/Server.js"
import { Logging } from "./Logging.js"
import { AppServices } from "./Services.js"

/** Configuration is decoded first, so a bad value stops the start with one message and exit code 1. */
const main = Effect.gen(function*() {
  const config = Layer.succeed(Config, yield* load)
  return yield* Layer.launch(HttpLive.pipe(Layer.provide(AppServices), Layer.provide(config))).pipe(
    Effect.tapErrorCause((cause) => Effect.logError("The service stopped on an error", cause)),
    Effect.provide(Logging.pipe(Layer.provide(config)))
  )
}).pipe(Effect.catchTag("ConfigInvalid", (error) => Console.error(error.message).pipe(Effect.zipRight(Effect.fail(error)))))

NodeRuntime.runMain(main, { disableErrorReporting: true, disablePrettyLogger: true })

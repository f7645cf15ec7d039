import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Layer, Option } from "effect"
import { Config, load } from "./Config.js"
import { DatabaseStartError } from "./db/Database.js"
import { HttpLive } from "./http/Server.js"
import { Logging } from "./Logging.js"
import { AppServices } from "./Services.js"

/** A database the service cannot use is said in one line (the cause is logged at debug level). */
const reportStop = (cause: Cause.Cause<unknown>) =>
  Option.match(Option.filter(Cause.failureOption(cause), (e) => e instanceof DatabaseStartError), {
    onSome: (error) => Console.error(error.message).pipe(Effect.zipRight(Effect.logDebug("Database start failure", cause))),
    onNone: () => Effect.logError("The service stopped on an error", cause)
  })

/** Configuration is decoded first, so a bad value stops the start with one message and exit code 1. */
const main = Effect.gen(function*() {
  const config = Layer.succeed(Config, yield* load)
  return yield* Layer.launch(HttpLive.pipe(Layer.provide(AppServices), Layer.provide(config))).pipe(
    Effect.tapErrorCause(reportStop),
    Effect.provide(Logging.pipe(Layer.provide(config)))
  )
}).pipe(Effect.catchTag("ConfigInvalid", (error) => Console.error(error.message).pipe(Effect.zipRight(Effect.fail(error)))))

NodeRuntime.runMain(main, { disableErrorReporting: true, disablePrettyLogger: true })

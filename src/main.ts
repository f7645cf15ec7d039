import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Layer, Option } from "effect"
import { Config, load } from "./Config.js"
import { DatabaseStartError } from "./db/Database.js"
import { oneLine } from "./FailureMessage.js"
import { ensurePortFree } from "./http/PortCheck.js"
import { Logging } from "./Logging.js"
import { ServerLive } from "./Services.js"
import { Tracing } from "./telemetry/Tracing.js"

/**
 * One line for any failure: a database the service cannot use is said on stderr as it is; anything
 * else is logged with what is wrong. The whole cause, stack included, only at LOG_LEVEL=debug.
 */
const reportStop = (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause) ? Effect.void : Option.match(Option.filter(Cause.failureOption(cause), (e) => e instanceof DatabaseStartError), {
    onSome: (error) => Console.error(error.message),
    onNone: () => Effect.logError(`The service stopped: ${oneLine(cause)}`)
  }).pipe(Effect.zipRight(Effect.logDebug("The cause in full", cause)))

/**
 * Configuration is decoded first, so a bad value stops the start with one message and exit code 1;
 * then the port is checked, before the database is opened and migrated.
 */
const main = Effect.gen(function*() {
  const settings = yield* load
  const config = Layer.succeed(Config, settings)
  return yield* ensurePortFree(settings.server.host, settings.server.port).pipe(
    Effect.zipRight(Layer.launch(ServerLive.pipe(Layer.provide(Tracing), Layer.provide(config)))),
    Effect.tapErrorCause(reportStop),
    Effect.provide(Logging.pipe(Layer.provide(config)))
  )
}).pipe(Effect.catchTag("ConfigInvalid", (error) => Console.error(error.message).pipe(Effect.zipRight(Effect.fail(error)))))

NodeRuntime.runMain(main, { disableErrorReporting: true, disablePrettyLogger: true })

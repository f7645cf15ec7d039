/**
 * The entry of a change worker thread: answers `ProcessChange` requests with `processChange`.
 * Bundled beside the server as `dist/change-worker.js` (see package.json "build"); from source,
 * `ChangeProcessor` bundles it on the fly.
 */
import * as WorkerRunner from "@effect/platform/WorkerRunner"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import { Effect, Layer } from "effect"
import { processChange, ProcessChange } from "./ChangeWork.js"

const Runner = WorkerRunner.layerSerialized(ProcessChange, {
  ProcessChange: (request) => Effect.suspend(() => processChange(request.change, request.layout))
})

NodeRuntime.runMain(WorkerRunner.launch(Runner.pipe(Layer.provide(NodeWorkerRunner.layer))), { disablePrettyLogger: true })

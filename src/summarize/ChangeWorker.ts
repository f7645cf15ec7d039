/**
 * The entry of a change worker thread: answers each `ChangeRequest` with `processChange`.
 * Bundled beside the server as `dist/change-worker.js` (see package.json "build"); from source,
 * `ChangeProcessor` bundles it on the fly. Plain `worker_threads` messages, structured-cloned:
 * the request and the processed change are plain data, so no runtime or codec runs on either side
 * per message (the platform's serialized worker pool cost more CPU per request than the work of a
 * typical change).
 */
import { Either } from "effect"
import { parentPort } from "node:worker_threads"
import { type ChangeReply, type ChangeRequest, processChange } from "./ChangeWork.js"

const reply = (request: ChangeRequest): ChangeReply => {
  try {
    return Either.match(processChange(request.change, request.layout), {
      onLeft: (invalid) => ({ id: request.id, _tag: "InvalidDiff", message: invalid.message }),
      onRight: (value) => ({ id: request.id, _tag: "Processed", value })
    })
  } catch (defect) {
    // A bug must fail its own request, not the thread and every request queued on it.
    return { id: request.id, _tag: "Defect", message: defect instanceof Error ? defect.stack ?? defect.message : String(defect) }
  }
}

parentPort?.on("message", (request: ChangeRequest) => parentPort?.postMessage(reply(request)))

/**
 * Bytes allocated per request by a server process, with V8's sampling heap profiler over the
 * inspector protocol: sampling every `intervalBytes`, counting objects a GC has already collected
 * too (so the figure is what was allocated, not what survived). The process must run with
 * `--inspect=127.0.0.1:<port>`.
 */
import { WebSocket } from "undici"

interface ProfileNode {
  readonly selfSize: number
  readonly children: ReadonlyArray<ProfileNode>
}

const totalBytes = (node: ProfileNode): number => node.children.reduce((sum, child) => sum + totalBytes(child), node.selfSize)

export interface Sampler {
  readonly start: () => Promise<void>
  /** Stops sampling; the estimated bytes allocated since `start`. */
  readonly stop: () => Promise<number>
  readonly close: () => void
}

export const connect = async (inspectorPort: number, intervalBytes = 16_384): Promise<Sampler> => {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as ReadonlyArray<{ readonly webSocketDebuggerUrl: string }>
  const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true })
    socket.addEventListener("error", reject, { once: true })
  })
  let nextId = 0
  const waiting = new Map<number, (result: any) => void>()
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { readonly id?: number; readonly result?: unknown; readonly error?: unknown }
    if (message.id === undefined) return
    waiting.get(message.id)?.(message.error === undefined ? message.result : Promise.reject(new Error(JSON.stringify(message.error))))
    waiting.delete(message.id)
  })
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<any>((resolve) => {
      const id = ++nextId
      waiting.set(id, resolve)
      socket.send(JSON.stringify({ id, method, params }))
    })
  await send("HeapProfiler.enable")
  return {
    start: async () => {
      await send("HeapProfiler.startSampling", {
        samplingInterval: intervalBytes,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true
      })
    },
    stop: async () => {
      const { profile } = (await send("HeapProfiler.stopSampling")) as { readonly profile: { readonly head: ProfileNode } }
      return totalBytes(profile.head)
    },
    close: () => socket.close()
  }
}

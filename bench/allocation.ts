/**
 * Bytes allocated per request by a server process, with V8's sampling heap profiler over the
 * inspector protocol: sampling every `intervalBytes`, counting objects a GC has already collected
 * too (so the figure is what was allocated, not what survived). The process must run with
 * `--inspect=127.0.0.1:<port>`.
 */
import { WebSocket } from "undici"

interface ProfileNode {
  readonly selfSize: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children: ReadonlyArray<ProfileNode>
}

/** Where allocations were made: a package (`effect`, `openai`, ...), a project file, or Node itself. */
const placeOf = (url: string): string => {
  const modules = url.lastIndexOf("/node_modules/")
  if (modules !== -1) {
    const parts = url.slice(modules + "/node_modules/".length).split("/")
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  const project = /\/((?:src|dist)\/.*)$/.exec(url)
  if (project !== null) return project[1]!
  return url === "" ? "(native/VM)" : url.startsWith("node:") ? "node internals" : url
}

export interface Allocation {
  readonly bytes: number
  /** Bytes by place (self size), largest first. */
  readonly places: ReadonlyArray<readonly [string, number]>
}

const tally = (head: ProfileNode): Allocation => {
  const places = new Map<string, number>()
  let bytes = 0
  const stack = [head]
  while (stack.length > 0) {
    const node = stack.pop()!
    bytes += node.selfSize
    if (node.selfSize > 0) {
      const place = placeOf(node.callFrame.url)
      places.set(place, (places.get(place) ?? 0) + node.selfSize)
    }
    stack.push(...node.children)
  }
  return { bytes, places: [...places].sort((a, b) => b[1] - a[1]) }
}

export interface Sampler {
  readonly start: () => Promise<void>
  /** Stops sampling; the estimated bytes allocated since `start`, in all and by place. */
  readonly stop: () => Promise<Allocation>
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
      return tally(profile.head)
    },
    close: () => socket.close()
  }
}

import { Duration, Effect, Schedule } from "effect"
import { createHmac } from "node:crypto"
import { createServer, type Server } from "node:http"
import type { TestApp } from "../../support/TestApp.js"

export const TOKEN = "jobs-token-for-tests-8c1d"
export const auth = { authorization: `Bearer ${TOKEN}` }
export const CALLBACK_SECRET = "callback-secret-for-tests-5e2b"

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

const answer = (response: Response): Promise<Answer> =>
  response.text().then((text) => ({ status: response.status, headers: response.headers, body: text === "" ? null : JSON.parse(text) }))

export const submit = (app: TestApp, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(() => app.post("/v1/summary-jobs", body, { ...auth, ...headers }).then(answer))

export const get = (app: TestApp, path: string) => Effect.promise(() => app.get(path, auth).then(answer))

export const cancel = (app: TestApp, jobId: string) =>
  Effect.promise(() => fetch(`${app.url}/v1/summary-jobs/${jobId}`, { method: "DELETE", headers: auth }).then(answer))

let changes = 0

/** A change no other item of the run has, so no cache answers it; `ref` names it in what upstream sees. */
export const item = (id?: string) => {
  const ref = `jobref${changes++}q`
  return {
    ...(id === undefined ? {} : { id }),
    before: `# Privacy policy\n\nAccount ${ref}: we keep your account data for 30 days.\n`,
    after: `# Privacy policy\n\nAccount ${ref}: we keep your account data for 90 days.\n`
  }
}

/** The `jobref` of each completion request the emulator received, one entry per request. */
export const refsCalled = (bodies: ReadonlyArray<unknown>): ReadonlyArray<string> =>
  bodies.flatMap((body) => {
    const match = /jobref\d+q/.exec(JSON.stringify(body))
    return match === null ? [] : [match[0]]
  })

/** Polls the job until `done` holds for it. */
export const waitForJob = (app: TestApp, jobId: string, done: (job: any) => boolean, within: Duration.DurationInput = "30 seconds") =>
  get(app, `/v1/summary-jobs/${jobId}`).pipe(
    Effect.map((a) => a.body),
    Effect.filterOrFail(done, () => "not yet" as const),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo(within)))
  )

/** Every item of a job, page by page (`limit` a page). */
export const allItems = (app: TestApp, jobId: string, limit: number) =>
  Effect.gen(function*() {
    const items: Array<any> = []
    let after: string | null = null
    let pages = 0
    do {
      const query: string = `limit=${limit}${after === null ? "" : `&after=${after}`}`
      const page: Answer = yield* get(app, `/v1/summary-jobs/${jobId}/items?${query}`)
      items.push(...page.body.items)
      after = page.body.next
      pages++
    } while (after !== null)
    return { items, pages }
  })

export interface Delivery {
  readonly body: string
  readonly timestamp: string
  readonly signature: string
  readonly valid: boolean
}

/** A callback receiver on `port`: records each delivery and whether its signature verifies with the shared secret. */
export const receiver = (port: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Server; readonly deliveries: Array<Delivery> }>((resume) => {
      const deliveries: Array<Delivery> = []
      const server = createServer((req, res) => {
        let body = ""
        req.setEncoding("utf8")
        req.on("data", (chunk: string) => (body += chunk))
        req.on("end", () => {
          const timestamp = String(req.headers["x-signature-timestamp"] ?? "")
          const signature = String(req.headers["x-signature"] ?? "")
          const expected = `sha256=${createHmac("sha256", CALLBACK_SECRET).update(`${timestamp}.${body}`).digest("hex")}`
          deliveries.push({ body, timestamp, signature, valid: signature === expected })
          res.writeHead(204).end()
        })
      })
      server.listen(port, "127.0.0.1", () => {
        resume(Effect.succeed({ server, deliveries }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
